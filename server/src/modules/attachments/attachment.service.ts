import { MAX_ATTACHMENT_BYTES, type AttachmentRef } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import { assertStaffCanAct } from '../conversations/conversation.access.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { Principal } from '../principal.js';
import { toRef, type AttachmentRepository } from './attachment.repository.js';
import { safeFilename, sniffContentType } from './sniff.js';

export interface AttachmentDeps {
  conversations: ConversationService;
  attachments: AttachmentRepository;
  /** Uploads one constituent may make per window. */
  uploadsPerConstituent: { points: number; duration: number };
}

const uploaderId = (p: Principal) => (p.kind === 'staff' ? p.userId : p.constituentId);

/** Files in conversations: checked by content, stored in the database, served only to who may see them. */
export class AttachmentService {
  constructor(private readonly d: AttachmentDeps) {}

  async upload(p: Principal, conversationId: string, rawName: string | undefined, bytes: Uint8Array): Promise<AttachmentRef> {
    const conv = await this.d.conversations.get(p, conversationId);
    if (p.kind === 'staff') assertStaffCanAct(p, conv);
    if (conv.status === 'ended') throw new AppError('CONFLICT', 'This conversation has ended');
    if (bytes.byteLength === 0) {
      throw new AppError('INVALID_PAYLOAD', 'The file is empty', { issues: [{ path: ['file'], message: 'The file is empty' }] });
    }
    if (bytes.byteLength > MAX_ATTACHMENT_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', 'Files can be up to 10 MB');
    const contentType = sniffContentType(bytes);
    if (!contentType) {
      const message = 'Only images (PNG, JPEG, GIF, WebP) and PDF files can be attached';
      throw new AppError('INVALID_PAYLOAD', message, { issues: [{ path: ['file'], message }] });
    }
    if (p.kind === 'constituent') {
      const { points, duration } = this.d.uploadsPerConstituent;
      if ((await this.d.attachments.countRecent(p.constituentId, duration)) >= points) {
        throw new AppError('RATE_LIMITED', 'You have sent many files recently. Please wait before sending more.', {
          retryAfterMs: duration * 1000,
        });
      }
    }
    const row = await this.d.attachments.create({
      conversationId: conv.id,
      uploaderKind: p.kind === 'staff' ? 'agent' : 'constituent',
      uploaderId: uploaderId(p),
      filename: safeFilename(rawName, contentType),
      contentType,
      data: bytes,
    });
    return toRef(row);
  }

  /** Every id must be a file this principal uploaded to this conversation and not yet sent. */
  async assertSendable(p: Principal, conversationId: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const unique = [...new Set(ids)];
    const found = await this.d.attachments.findUnlinked(unique, conversationId, uploaderId(p));
    if (found.length !== unique.length) {
      const message = 'One or more files were not found (upload them to this conversation first)';
      throw new AppError('INVALID_PAYLOAD', message, { issues: [{ path: ['attachmentIds'], message }] });
    }
  }

  async download(p: Principal, id: string): Promise<{ ref: AttachmentRef; data: Uint8Array }> {
    const meta = await this.d.attachments.findMeta(id);
    const notFound = new AppError('NOT_FOUND', 'File not found');
    if (!meta) throw notFound;
    await this.d.conversations.get(p, meta.conversationId).catch(() => {
      throw notFound;
    });
    // Not yet sent: only its uploader may fetch it. Sent: whoever may see the message.
    if (!meta.messageId && meta.uploaderId !== uploaderId(p)) throw notFound;
    if (meta.messageId && p.kind === 'constituent' && !(await this.d.conversations.isPublicMessage(meta.messageId))) {
      throw notFound;
    }
    const data = await this.d.attachments.data(id);
    if (!data) throw notFound;
    return { ref: toRef(meta), data };
  }
}
