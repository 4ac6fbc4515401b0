import { aliasedTable, and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { PlaybookTask, Stage } from '@casebridge/shared';
import type { Db, Tx } from '../../db/client.js';
import { caseTasks, users } from '../../db/schema.js';

export type TaskRow = typeof caseTasks.$inferSelect;

const doer = aliasedTable(users, 'doer');

export class TaskRepository {
  constructor(private readonly db: Db) {}

  /** Playbook steps in stage and playbook order, then tasks added by hand, oldest first. */
  async listForCase(caseId: string, tx: Tx | Db = this.db) {
    return tx
      .select({ task: caseTasks, assigneeName: users.displayName, doneByName: doer.displayName })
      .from(caseTasks)
      .leftJoin(users, eq(users.id, caseTasks.assigneeId))
      .leftJoin(doer, eq(doer.id, caseTasks.doneBy))
      .where(eq(caseTasks.caseId, caseId))
      .orderBy(
        sql`case ${caseTasks.stage} when 'intake' then 0 when 'review' then 1 when 'process' then 2 when 'decision' then 3 else 4 end`,
        asc(caseTasks.position),
        asc(caseTasks.createdAt),
      );
  }

  async find(caseId: string, taskId: string, tx: Tx | Db = this.db): Promise<TaskRow | undefined> {
    const [row] = await tx
      .select()
      .from(caseTasks)
      .where(and(eq(caseTasks.id, taskId), eq(caseTasks.caseId, caseId)));
    return row;
  }

  /** Copies a playbook onto a case; steps it already has (same key) are left as they are. */
  async instantiate(tx: Tx, caseId: string, playbook: PlaybookTask[]): Promise<void> {
    if (!playbook.length) return;
    await tx
      .insert(caseTasks)
      .values(
        playbook.map((t, i) => ({
          caseId,
          templateKey: t.key,
          stage: t.stage,
          position: i,
          title: t.title,
          instructions: t.instructions,
          required: t.required,
          action: t.action ?? null,
        })),
      )
      .onConflictDoNothing();
  }

  /** When a case changes type, the old type's unfinished steps no longer apply; finished ones stay as history. */
  async dropOpenPlaybookTasks(tx: Tx, caseId: string): Promise<void> {
    await tx
      .delete(caseTasks)
      .where(and(eq(caseTasks.caseId, caseId), isNull(caseTasks.doneAt), sql`${caseTasks.templateKey} is not null`));
  }

  async create(tx: Tx, values: typeof caseTasks.$inferInsert): Promise<TaskRow> {
    const [row] = await tx.insert(caseTasks).values(values).returning();
    return row!;
  }

  /** Marks done or not done; undefined when it already was (a double click changes nothing). */
  async setDone(tx: Tx, taskId: string, by: string, done: boolean): Promise<TaskRow | undefined> {
    const [row] = await tx
      .update(caseTasks)
      .set(done ? { doneAt: sql`now()`, doneBy: by } : { doneAt: null, doneBy: null })
      .where(and(eq(caseTasks.id, taskId), done ? isNull(caseTasks.doneAt) : sql`${caseTasks.doneAt} is not null`))
      .returning();
    return row;
  }

  /** Required steps not yet done in the given stages (all stages when none are given). */
  async missingRequired(caseId: string, stages?: Stage[], tx: Tx | Db = this.db): Promise<TaskRow[]> {
    if (stages && !stages.length) return [];
    return tx
      .select()
      .from(caseTasks)
      .where(
        and(
          eq(caseTasks.caseId, caseId),
          eq(caseTasks.required, true),
          isNull(caseTasks.doneAt),
          stages ? inArray(caseTasks.stage, stages) : undefined,
        ),
      )
      .orderBy(asc(caseTasks.position));
  }
}
