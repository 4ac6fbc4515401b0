CREATE TABLE "exchange_handoffs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"handoff_id" uuid NOT NULL,
	"direction" text NOT NULL,
	"agency_id" uuid NOT NULL,
	"partner_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"state" text NOT NULL,
	"case_id" uuid,
	"conversation_id" uuid,
	"remote_reference" text,
	"group_id" uuid,
	"offered_by" uuid,
	"service_id" uuid,
	"note" text DEFAULT '' NOT NULL,
	"reason" text,
	"accepted_by" text,
	"shared" jsonb,
	"expires_at" timestamp with time zone,
	"out_seq" integer DEFAULT 0 NOT NULL,
	"synced_state" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "exchange_inbox" (
	"partner_id" uuid NOT NULL,
	"idempotency_key" text NOT NULL,
	"response" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "exchange_inbox_partner_id_idempotency_key_pk" PRIMARY KEY("partner_id","idempotency_key")
);
--> statement-breakpoint
CREATE TABLE "exchange_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"partner_id" uuid NOT NULL,
	"key_id" text NOT NULL,
	"side" text NOT NULL,
	"public_key" text NOT NULL,
	"private_key_sealed" text,
	"status" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "exchange_nonces" (
	"partner_id" uuid NOT NULL,
	"nonce" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "exchange_nonces_partner_id_nonce_pk" PRIMARY KEY("partner_id","nonce")
);
--> statement-breakpoint
CREATE TABLE "exchange_outbox" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"partner_id" uuid NOT NULL,
	"handoff_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"event" jsonb NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"locked_until" timestamp with time zone,
	"sent_at" timestamp with time zone,
	"failed_at" timestamp with time zone,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "exchange_partners" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"agency_id" uuid NOT NULL,
	"name" text NOT NULL,
	"base_url" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"services" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"manifest" jsonb DEFAULT '{"caseFields":[],"constituent":[],"timeline":[]}'::jsonb NOT NULL,
	"offer_timeout_seconds" integer DEFAULT 600 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "exchange_partners_status_ck" CHECK ("exchange_partners"."status" in ('active','revoked'))
);
--> statement-breakpoint
ALTER TABLE "exchange_handoffs" ADD CONSTRAINT "exchange_handoffs_agency_id_agencies_id_fk" FOREIGN KEY ("agency_id") REFERENCES "public"."agencies"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_handoffs" ADD CONSTRAINT "exchange_handoffs_partner_id_exchange_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."exchange_partners"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_handoffs" ADD CONSTRAINT "exchange_handoffs_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_handoffs" ADD CONSTRAINT "exchange_handoffs_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_handoffs" ADD CONSTRAINT "exchange_handoffs_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_handoffs" ADD CONSTRAINT "exchange_handoffs_offered_by_users_id_fk" FOREIGN KEY ("offered_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_inbox" ADD CONSTRAINT "exchange_inbox_partner_id_exchange_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."exchange_partners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_keys" ADD CONSTRAINT "exchange_keys_partner_id_exchange_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."exchange_partners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_nonces" ADD CONSTRAINT "exchange_nonces_partner_id_exchange_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."exchange_partners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_outbox" ADD CONSTRAINT "exchange_outbox_partner_id_exchange_partners_id_fk" FOREIGN KEY ("partner_id") REFERENCES "public"."exchange_partners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exchange_partners" ADD CONSTRAINT "exchange_partners_agency_id_agencies_id_fk" FOREIGN KEY ("agency_id") REFERENCES "public"."agencies"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "exchange_handoffs_uq" ON "exchange_handoffs" USING btree ("handoff_id","direction");--> statement-breakpoint
CREATE INDEX "exchange_handoffs_conversation_ix" ON "exchange_handoffs" USING btree ("conversation_id");--> statement-breakpoint
CREATE INDEX "exchange_handoffs_case_ix" ON "exchange_handoffs" USING btree ("case_id");--> statement-breakpoint
CREATE INDEX "exchange_handoffs_state_ix" ON "exchange_handoffs" USING btree ("agency_id","state");--> statement-breakpoint
CREATE UNIQUE INDEX "exchange_keys_key_uq" ON "exchange_keys" USING btree ("key_id","side");--> statement-breakpoint
CREATE INDEX "exchange_keys_partner_ix" ON "exchange_keys" USING btree ("partner_id");--> statement-breakpoint
CREATE INDEX "exchange_nonces_expires_ix" ON "exchange_nonces" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "exchange_outbox_seq_uq" ON "exchange_outbox" USING btree ("partner_id","handoff_id","seq");--> statement-breakpoint
CREATE INDEX "exchange_outbox_due_ix" ON "exchange_outbox" USING btree ("next_attempt_at") WHERE "exchange_outbox"."sent_at" is null and "exchange_outbox"."failed_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "exchange_partners_name_uq" ON "exchange_partners" USING btree ("agency_id","name");