ALTER TABLE "users" ADD COLUMN "presence" text DEFAULT 'offline' NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "capacity" integer DEFAULT 3 NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_presence_ck" CHECK ("users"."presence" in ('available','away','offline'));--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_capacity_ck" CHECK ("users"."capacity" between 0 and 50);