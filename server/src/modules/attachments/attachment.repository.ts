import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { AttachmentRef } from '@casebridge/shared';
import type { Db, Tx } from '../../db/client.js';
import { attachments } from '../../db/schema.js';

export type AttachmentMeta = typeof attachments.$inferSelect extends infer R ? Omit<R & object, 'data'> : never;

const meta = {
  id: attachments.id,
  conversationId: attachments.conversationId,
  messageId: attachments.messageId,
  uploaderKind: attachments.uploaderKind,
  uploaderId: attachments.uploaderId,
  filename: attachments.filename,
  contentType: attachments.contentType,
  size: attachments.size,
  createdAt: attachments.createdAt,
};

export function toRef(a: { id: string; filename: string; contentType: string; size: number }): AttachmentRef {
  return { id: a.id, filename: a.filename, contentType: a.contentType as AttachmentRef['contentType'], size: a.size };
}

export class AttachmentRepository {
  constructor(private readonly db: Db) {}

  /** `tx` and `messageId` when the file arrives with its message (an MMS), not uploaded ahead of it. */
  async create(
    input: {
      conversationId: string;
      uploaderKind: 'agent' | 'constituent';
      uploaderId: string;
      filename: string;
      contentType: string;
      data: Uint8Array;
      messageId?: string;
    },
    tx?: Tx,
  ): Promise<AttachmentMeta> {
    const [row] = await (tx ?? this.db)
      .insert(attachments)
      .values({ ...input, size: input.data.byteLength })
      .returning(meta);
    return row!;
  }

  async findMeta(id: string): Promise<AttachmentMeta | undefined> {
    const [row] = await this.db.select(meta).from(attachments).where(eq(attachments.id, id));
    return row;
  }

  async data(id: string): Promise<Uint8Array | undefined> {
    const [row] = await this.db.select({ data: attachments.data }).from(attachments).where(eq(attachments.id, id));
    return row?.data;
  }

  /** Files this uploader put in this conversation that no message has claimed yet. */
  async findUnlinked(ids: string[], conversationId: string, uploaderId: string): Promise<AttachmentMeta[]> {
    if (ids.length === 0) return [];
    return this.db
      .select(meta)
      .from(attachments)
      .where(
        and(
          inArray(attachments.id, ids),
          eq(attachments.conversationId, conversationId),
          eq(attachments.uploaderId, uploaderId),
          isNull(attachments.messageId),
        ),
      );
  }

  async link(tx: Tx, ids: string[], messageId: string): Promise<void> {
    if (ids.length === 0) return;
    await tx
      .update(attachments)
      .set({ messageId })
      .where(and(inArray(attachments.id, ids), isNull(attachments.messageId)));
  }

  /** Attachment refs of many messages at once, keyed by message id. */
  async refsByMessage(messageIds: string[]): Promise<Map<string, AttachmentRef[]>> {
    const out = new Map<string, AttachmentRef[]>();
    if (messageIds.length === 0) return out;
    const rows = await this.db
      .select(meta)
      .from(attachments)
      .where(inArray(attachments.messageId, messageIds))
      .orderBy(attachments.createdAt);
    for (const r of rows) {
      const list = out.get(r.messageId!) ?? [];
      list.push(toRef(r));
      out.set(r.messageId!, list);
    }
    return out;
  }

  /** Uploads in a conversation by one uploader in the last hour (limit check). */
  async countRecent(uploaderId: string, windowSec: number): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(attachments)
      .where(and(eq(attachments.uploaderId, uploaderId), sql`${attachments.createdAt} > now() - make_interval(secs => ${windowSec})`));
    return Number(row?.n ?? 0);
  }
}
