CREATE TABLE "audit_chain_heads" (
	"chain" text PRIMARY KEY NOT NULL,
	"seq" bigint NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "secure_fields" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"agency_id" uuid NOT NULL,
	"conversation_id" uuid NOT NULL,
	"case_id" uuid NOT NULL,
	"label" text NOT NULL,
	"kind" text NOT NULL,
	"requested_by" uuid,
	"value_sealed" text,
	"provided_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "agencies" ADD COLUMN "sensitive_patterns" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "actor_role" text;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "user_agent_hash" text;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "chain" text;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "seq" bigint;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "prev_hash" text;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "hash" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "meta" jsonb;--> statement-breakpoint
ALTER TABLE "secure_fields" ADD CONSTRAINT "secure_fields_agency_id_agencies_id_fk" FOREIGN KEY ("agency_id") REFERENCES "public"."agencies"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "secure_fields" ADD CONSTRAINT "secure_fields_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "secure_fields" ADD CONSTRAINT "secure_fields_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "secure_fields" ADD CONSTRAINT "secure_fields_requested_by_users_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "secure_fields_conversation_ix" ON "secure_fields" USING btree ("conversation_id");--> statement-breakpoint
CREATE UNIQUE INDEX "audit_log_chain_seq_uq" ON "audit_log" USING btree ("chain","seq");--> statement-breakpoint
-- Issue #11: the audit trail is append-only and hash-chained, enforced by the database itself.
-- The canonical form of a row, hashed with sha256. `npm run audit:verify` recomputes it with its own copy
-- of this expression (server/src/modules/audit/audit-chain.ts); keep the two identical.
CREATE FUNCTION audit_log_hash(r audit_log) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    r.chain, r.seq, r.prev_hash, r.id, r.agency_id, r.actor_kind, r.actor_id, r.actor_role, r.action,
    r.object_type, r.object_id, r.outcome, r.source_ip, r.user_agent_hash, r.detail,
    to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  )::text, 'UTF8')), 'hex')
$$;
--> statement-breakpoint
-- Rows written before the chain existed join it, oldest first, per agency.
DO $$
DECLARE
  r audit_log;
  head_seq bigint;
  head_hash text;
BEGIN
  FOR r IN SELECT * FROM audit_log ORDER BY coalesce(agency_id::text, 'global'), created_at, id LOOP
    r.chain := coalesce(r.agency_id::text, 'global');
    IF r.actor_role IS NULL THEN
      IF r.actor_kind = 'staff' AND r.actor_id IS NOT NULL THEN
        SELECT u.role INTO r.actor_role FROM users u WHERE u.id = r.actor_id;
      ELSE
        r.actor_role := r.actor_kind;
      END IF;
    END IF;
    INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (r.chain, 0, repeat('0', 64)) ON CONFLICT (chain) DO NOTHING;
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chain_heads h WHERE h.chain = r.chain;
    r.seq := head_seq + 1;
    r.prev_hash := head_hash;
    r.hash := audit_log_hash(r);
    UPDATE audit_log SET chain = r.chain, actor_role = r.actor_role, seq = r.seq, prev_hash = r.prev_hash, hash = r.hash WHERE id = r.id;
    UPDATE audit_chain_heads SET seq = r.seq, hash = r.hash WHERE chain = r.chain;
  END LOOP;
END $$;
--> statement-breakpoint
-- Every insert: the database's clock, the actor's role, and the next link of the agency's chain. The head row
-- is locked until the inserting transaction ends, so two writers (two nodes) can never take the same link.
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head_seq bigint;
  head_hash text;
BEGIN
  NEW.chain := coalesce(NEW.agency_id::text, 'global');
  IF NEW.actor_role IS NULL THEN
    IF NEW.actor_kind = 'staff' AND NEW.actor_id IS NOT NULL THEN
      SELECT u.role INTO NEW.actor_role FROM users u WHERE u.id = NEW.actor_id;
    ELSE
      NEW.actor_role := NEW.actor_kind;
    END IF;
  END IF;
  INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (NEW.chain, 0, repeat('0', 64)) ON CONFLICT (chain) DO NOTHING;
  SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chain_heads h WHERE h.chain = NEW.chain FOR UPDATE;
  -- Read after the lock: within a chain, time never goes backwards as seq goes up.
  NEW.created_at := clock_timestamp();
  NEW.seq := head_seq + 1;
  NEW.prev_hash := head_hash;
  NEW.hash := audit_log_hash(NEW);
  UPDATE audit_chain_heads SET seq = NEW.seq, hash = NEW.hash WHERE chain = NEW.chain;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
--> statement-breakpoint
-- The chain heads move only from inside the insert trigger (trigger depth 2), never on their own.
CREATE FUNCTION audit_chain_heads_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_chain_heads moves only with audit_log: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
--> statement-breakpoint
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
--> statement-breakpoint
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
--> statement-breakpoint
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
--> statement-breakpoint
CREATE TRIGGER audit_chain_heads_guard BEFORE UPDATE OR DELETE ON audit_chain_heads FOR EACH ROW EXECUTE FUNCTION audit_chain_heads_guard();
--> statement-breakpoint
CREATE TRIGGER audit_chain_heads_no_truncate BEFORE TRUNCATE ON audit_chain_heads FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_heads_guard();
