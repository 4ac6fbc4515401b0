// The shared types the console uses, in one import.
export type {
  Ack,
  CaseDetail,
  CaseType,
  FieldDef,
  CaseEvent,
  Channel,
  ConversationSummary,
  GroupRef as Group,
  Me,
  Mention,
  Message,
  Presence,
  Priority,
  SlaAlert,
  StaffMember,
  SyncResult,
} from '@casebridge/shared';
