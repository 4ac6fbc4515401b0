export const statusLabel = { queued: 'Waiting', active: 'In progress', ended: 'Ended' } as const;
export const channelLabel = { web: 'Web chat', sms: 'SMS', voice: 'Phone', email: 'Email', portal: 'Portal' } as const;
export const priorityLabel = { low: 'Low', normal: 'Normal', high: 'High', urgent: 'Urgent' } as const;
export const caseStatusLabel = {
  new: 'New',
  open: 'Open',
  awaiting_info: 'Awaiting info',
  resolved: 'Resolved',
  closed: 'Closed',
  cancelled: 'Cancelled',
} as const;
export const presenceLabel = { available: 'Available', away: 'Away', offline: 'Offline' } as const;
export const stageLabel = { intake: 'Intake', review: 'Review', process: 'Process', decision: 'Decision' } as const;
export const slaLabel = { first_response: 'First response', resolution: 'Resolution' } as const;
