CREATE TABLE "calls" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"agency_id" uuid NOT NULL,
	"call_sid" text NOT NULL,
	"conversation_id" uuid,
	"case_id" uuid,
	"constituent_id" uuid,
	"from_number" text NOT NULL,
	"to_number" text NOT NULL,
	"language" text DEFAULT 'en' NOT NULL,
	"service_id" uuid,
	"state" text DEFAULT 'ivr' NOT NULL,
	"choice" text,
	"agent_id" uuid,
	"queued_at" timestamp with time zone,
	"answered_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"duration_seconds" integer,
	"recording_sid" text,
	"recording_url" text,
	"recording_kind" text,
	"recording_duration_seconds" integer,
	"transcription_status" text,
	"transcription_text" text,
	"task_id" uuid,
	"seen" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "calls_state_ck" CHECK ("calls"."state" in ('ivr','queued','connecting','in_progress','completed','abandoned','voicemail','callback'))
);
--> statement-breakpoint
ALTER TABLE "agencies" ADD COLUMN "twilio_api_key_sid" text;--> statement-breakpoint
ALTER TABLE "agencies" ADD COLUMN "twilio_api_key_secret_sealed" text;--> statement-breakpoint
ALTER TABLE "agencies" ADD COLUMN "twilio_twiml_app_sid" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "voice_phone" text;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_agency_id_agencies_id_fk" FOREIGN KEY ("agency_id") REFERENCES "public"."agencies"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_constituent_id_constituents_id_fk" FOREIGN KEY ("constituent_id") REFERENCES "public"."constituents"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_service_id_service_definitions_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."service_definitions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_agent_id_users_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "calls" ADD CONSTRAINT "calls_task_id_case_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."case_tasks"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "calls_call_sid_uq" ON "calls" USING btree ("call_sid");--> statement-breakpoint
CREATE INDEX "calls_conversation_ix" ON "calls" USING btree ("conversation_id");--> statement-breakpoint
CREATE INDEX "calls_case_ix" ON "calls" USING btree ("case_id");