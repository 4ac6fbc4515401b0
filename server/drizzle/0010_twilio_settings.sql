ALTER TABLE "agencies" ADD COLUMN "twilio_account_sid" text;--> statement-breakpoint
ALTER TABLE "agencies" ADD COLUMN "twilio_auth_token_sealed" text;--> statement-breakpoint
ALTER TABLE "agencies" ADD COLUMN "twilio_public_base_url" text;--> statement-breakpoint
ALTER TABLE "agencies" ADD COLUMN "twilio_numbers" text[] DEFAULT '{}'::text[] NOT NULL;