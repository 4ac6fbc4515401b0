import type { CaseEvent, FieldDef, Stage } from '@casebridge/shared';
import { caseStatusLabel, channelLabel, priorityLabel, slaLabel, stageLabel } from './labels';

/** One case timeline event as a sentence an agent reads at a glance. */
export function describeEvent(e: CaseEvent, fields: FieldDef[] = []): string {
  const who = e.actorName ?? (e.actorKind === 'constituent' ? 'The constituent' : 'CaseBridge');
  const d = e.data as Record<string, unknown>;
  const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);
  switch (e.kind) {
    case 'case.created':
      return `${who} opened this case`;
    case 'conversation.started':
      if (d.channel === 'portal') return 'The constituent wrote through the portal';
      if (d.via === 'portal') return `Request made in the portal${d.service ? ` for “${String(d.service)}”` : ''}`;
      if (d.channel === 'sms') return `Conversation started by text message${d.routing ? ` · ${String(d.routing)}` : ''}`;
      return (
        (d.offline
          ? `Message left on ${channelLabel.web.toLowerCase()} while chat was closed`
          : `Conversation started on ${channelLabel.web.toLowerCase()}${d.service ? ` about “${String(d.service)}”` : ''}`) +
        (d.routing ? ` · ${String(d.routing)}` : '')
      );
    case 'conversation.assigned': {
      if (d.reason !== 'routed') return `${who} took the conversation`;
      // Routing explains itself: the rule, who was eligible with their load, who got it.
      const chosen = d.chosen as { name: string; load: number; capacity: number } | undefined;
      const eligible = (d.eligible as { name: string; load: number; capacity: number }[] | undefined) ?? [];
      const mode = d.mode === 'round_robin' ? 'next in turn' : 'least busy';
      const loads = eligible.map((e) => `${e.name} ${e.load}/${e.capacity}`).join(', ');
      return `Routed to ${chosen?.name ?? 'an agent'} in ${String(d.group)} (${mode}; available then: ${loads || 'none'})`;
    }
    case 'conversation.joined':
      return `${who} joined the conversation`;
    case 'conversation.returned':
      return d.reason === 'agent_offline'
        ? `${who} went offline before answering: back in the queue, keeping its place`
        : `${who} did not answer in time: back in the queue, keeping its place`;
    case 'conversation.ended':
      return `${who} ended the conversation`;
    case 'conversation.rated':
      return `The constituent rated the help ${String(d.score)} out of 5`;
    case 'case.status_changed': {
      const to = caseStatusLabel[d.to as keyof typeof caseStatusLabel];
      if (d.reason === 'constituent_replied') return `The constituent replied: the case is ${to} again`;
      if (d.reason === 'reopen_window_passed') return `Nobody replied within the reopen window: the case is ${to}`;
      const base = `${who} changed the status from ${caseStatusLabel[d.from as keyof typeof caseStatusLabel]} to ${to}`;
      return d.request ? `${base}, asking for: ${String(d.request)}` : base;
    }
    case 'case.priority_changed':
      return `${who} changed the priority to ${priorityLabel[d.to as keyof typeof priorityLabel]}`;
    case 'case.tags_changed':
      return [
        list(d.added).length ? `${who} tagged ${list(d.added).join(', ')}` : '',
        list(d.removed).length ? `${who} removed ${list(d.removed).join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ');
    case 'case.type_changed':
      return `${who} set the case type to ${String(d.to)}`;
    case 'case.fields_changed':
      return `${who} updated ${list(d.fields).map((k) => fields.find((f) => f.key === k)?.label.en ?? k).join(', ')}`;
    case 'case.linked':
      return `${who} linked case ${String(d.reference)}`;
    case 'case.unlinked':
      return `${who} unlinked case ${String(d.reference)}`;
    case 'conversation.moved_in':
      return `${who} moved a conversation here from ${String(d.from)}`;
    case 'conversation.moved_out':
      return `${who} moved the conversation to case ${String(d.to)}`;
    case 'conversation.transferred':
      return `${who} transferred the conversation to ${String(d.to)}`;
    case 'case.stage_changed':
      return `${who} moved the case from ${stageLabel[d.from as Stage]} to ${stageLabel[d.to as Stage]}`;
    case 'task.done':
      return `${who} did “${String(d.title)}”`;
    case 'task.reopened':
      return `${who} marked “${String(d.title)}” not done`;
    case 'task.added':
      return `${who} added the task “${String(d.title)}”`;
    case 'sla.warning':
      return `SLA warning: ${slaLabel[d.metric as keyof typeof slaLabel]} is due ${new Date(String(d.dueAt)).toLocaleString()}`;
    case 'sla.breached':
      return `SLA breached: ${slaLabel[d.metric as keyof typeof slaLabel]} was due ${new Date(String(d.dueAt)).toLocaleString()}`;
    case 'case.merged_from':
      return `${who} merged duplicate case ${String(d.reference)} into this one`;
    case 'case.merged_into':
      return `${who} merged this case into ${String(d.reference)}`;
    case 'constituent.notified':
      return `${d.via === 'email' ? 'Emailed the constituent' : 'Posted for the constituent in the portal'}: “${String(d.body)}”`;
    case 'sms.opted_out':
      return `${String(d.number)} replied STOP: no texts go to this number until they text START`;
    case 'sms.opted_in':
      return `${String(d.number)} texted START: texts can be sent again`;
    case 'conversation.text_linked':
      return `The constituent asked to continue by text at ${String(d.number)}`;
    case 'transcript.emailed':
      return 'The constituent emailed themselves the transcript';
    // ---- phone calls ----
    case 'call.received':
      return (
        `Call from ${String(d.from)}${d.service ? ` about “${String(d.service)}”` : ''}${d.language === 'es' ? ' (Spanish)' : ''}` +
        (d.closed ? ' while the office was closed' : '') +
        (d.routing ? ` · ${String(d.routing)}` : '')
      );
    case 'call.ringing':
      return `Ringing ${e.actorName ?? 'the agent'}`;
    case 'call.answered':
      return `${who} answered the call${typeof d.waitedSeconds === 'number' ? ` after ${duration(d.waitedSeconds)} waiting` : ''}`;
    case 'call.ended':
      if (d.endedBy === 'agent') return `${who} ended the call${typeof d.durationSeconds === 'number' ? ` after ${duration(d.durationSeconds)}` : ''}`;
      return `Call ended${typeof d.durationSeconds === 'number' ? ` after ${duration(d.durationSeconds)}` : ''}`;
    case 'call.missed':
      return `${e.actorName ?? 'The agent'} did not pick up (${String(d.status)}): the caller is back in line, keeping their place`;
    case 'call.bridge_failed':
      return 'The call could not be put through: the caller is back in line';
    case 'call.abandoned':
      return `The caller hung up ${d.whileRinging ? 'while the agent’s phone rang' : 'while waiting'}${typeof d.waitedSeconds === 'number' ? ` (${duration(d.waitedSeconds)} in line)` : ''}`;
    case 'call.callback_requested':
      return `The caller asked to be called back at ${String(d.number)}: task “${String(d.title)}” added for the group`;
    case 'call.voicemail_started':
      return d.closed ? 'The office was closed: the caller was offered a voicemail' : 'The caller chose to leave a voicemail';
    case 'call.outgoing':
      return `${who} called ${String(d.to)} from the browser`;
    case 'call.outgoing_ended':
      return `The call to the constituent ended (${String(d.status)})${typeof d.durationSeconds === 'number' && d.durationSeconds > 0 ? ` after ${duration(d.durationSeconds)}` : ''}`;
    case 'call.voicemail':
      return `Voicemail left${typeof d.durationSeconds === 'number' ? ` (${duration(d.durationSeconds)})` : ''}${d.playable ? ': play it under Calls' : ''}`;
    case 'call.recording':
      return `Call recorded${typeof d.durationSeconds === 'number' ? ` (${duration(d.durationSeconds)})` : ''}${d.playable ? ': play it under Calls' : ''}`;
    case 'call.transcription':
      return d.status === 'completed' ? `Voicemail transcription: “${String(d.text ?? '')}”` : 'The voicemail could not be transcribed';
    // Service Exchange (#10): the same handoff id is on both agencies' timelines.
    case 'exchange.offered':
      return `${who} offered this to ${String(d.partner)}: “${String(d.note)}”`;
    case 'exchange.received':
      return `Handed over by ${String(d.from)} (their case ${String(d.remoteReference)}): “${String(d.note)}”`;
    case 'exchange.accepted':
      return d.partner ? `${String(d.partner)} accepted (their case ${String(d.remoteReference)}, ${String(d.agentName)})` : `${who} accepted the handoff from ${String(d.from)}`;
    case 'exchange.declined':
      return d.requeued !== undefined ? `The partner agency declined: “${String(d.reason)}”${d.requeued ? ' · back in the queue, keeping its place' : ''}` : `${who} declined: “${String(d.reason)}”`;
    case 'exchange.expired':
      return `No answer from the partner agency in time${d.requeued ? ': back in the queue, keeping its place' : ''}`;
    case 'exchange.withdrawn':
      return `The offer was withdrawn: ${String(d.reason)}`;
    case 'exchange.status_mirrored': {
      const to = d.to as { status?: string; stage?: string } | undefined;
      return `${String(d.partner)} changed the linked case: ${caseStatusLabel[to?.status as keyof typeof caseStatusLabel] ?? String(to?.status)}, ${stageLabel[to?.stage as Stage] ?? String(to?.stage)}`;
    }
    case 'exchange.reply':
      return `${String(d.name ?? d.partner)} (${String(d.partner)}) replied: ${String(d.body)}`;
    default:
      return `${who}: ${e.kind}`;
  }
}

/** 75 → "1 min 15 s". */
function duration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m ? `${m} min${s ? ` ${s} s` : ''}` : `${s} s`;
}
