ALTER TABLE "conversations" ADD COLUMN "assigned_by" text;--> statement-breakpoint
ALTER TABLE "groups" ADD COLUMN "routing" text DEFAULT 'manual' NOT NULL;--> statement-breakpoint
ALTER TABLE "groups" ADD COLUMN "accept_seconds" integer DEFAULT 120 NOT NULL;--> statement-breakpoint
ALTER TABLE "groups" ADD CONSTRAINT "groups_routing_ck" CHECK ("groups"."routing" in ('manual','least_busy','round_robin'));