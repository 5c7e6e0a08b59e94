"""The PostgreSQL job store's numbered migrations, applied at open under the schema's DDL lock
(framequeue.db.postgres.migrate says how); steps are only ever added at the end."""

from __future__ import annotations

from framequeue.db.postgres import Conn, Migration
from framequeue.db.postgres import migrate as apply_migrations

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "jobs and the webhook outbox", """
        CREATE TABLE IF NOT EXISTS {s}.jobs (
            id text PRIMARY KEY,
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            pipeline text NOT NULL,
            pipeline_version text NOT NULL,
            input_key text NOT NULL,
            params jsonb NOT NULL,
            status text NOT NULL,
            created_at_s double precision NOT NULL,
            updated_at_s double precision NOT NULL,
            expires_at_s double precision NOT NULL,
            timeout_s double precision NOT NULL,
            max_attempts integer NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            started_at_s double precision,
            finished_at_s double precision,
            lease_owner text,
            lease_token bigint NOT NULL DEFAULT 0,
            lease_deadline_s double precision,
            cancel_requested boolean NOT NULL DEFAULT false,
            frames_done bigint NOT NULL DEFAULT 0,
            frames_total bigint,
            fps double precision NOT NULL DEFAULT 0,
            eta_s double precision,
            error_code text,
            error_message text,
            outputs jsonb NOT NULL DEFAULT '{{}}',
            webhook_url text,
            webhook_secret text,
            attributes jsonb NOT NULL DEFAULT '{{}}',
            idempotency_key text UNIQUE,
            request_hash text
        );
        CREATE INDEX IF NOT EXISTS jobs_status ON {s}.jobs (status, seq);
        CREATE INDEX IF NOT EXISTS jobs_queued_expiry ON {s}.jobs (expires_at_s) WHERE status = 'queued';
        CREATE INDEX IF NOT EXISTS jobs_running_lease ON {s}.jobs (lease_deadline_s) WHERE status = 'running';
        CREATE TABLE IF NOT EXISTS {s}.outbox (
            id text PRIMARY KEY,
            job_id text NOT NULL,
            url text NOT NULL,
            secret text NOT NULL,
            payload bytea NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at_s double precision NOT NULL,
            delivered_at_s double precision,
            dead boolean NOT NULL DEFAULT false,
            last_error text
        );
        CREATE INDEX IF NOT EXISTS outbox_due ON {s}.outbox (next_attempt_at_s)
            WHERE delivered_at_s IS NULL AND NOT dead;
    """),
    Migration(2, "published_at_s: queued jobs whose message the broker never confirmed", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS published_at_s double precision;
        CREATE INDEX IF NOT EXISTS jobs_unpublished ON {s}.jobs (created_at_s)
            WHERE status = 'queued' AND published_at_s IS NULL;
    """),
    Migration(3, "async endpoints, and where a job delivers its results", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS endpoint text;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS output_uri text;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS failure_uri text;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS error_webhook_url text;
        CREATE TABLE IF NOT EXISTS {s}.endpoints (
            name text PRIMARY KEY,
            pipeline text NOT NULL,
            params jsonb NOT NULL,
            output_path text NOT NULL,
            failure_path text,
            success_webhook text,
            error_webhook text,
            webhook_secret text,
            max_concurrent_invocations integer NOT NULL,
            created_at_s double precision NOT NULL
        );
    """),
    Migration(4, "the model endpoint registry: (model, version) -> endpoints with weights", """
        CREATE TABLE IF NOT EXISTS {s}.model_endpoints (
            id text PRIMARY KEY,
            model text NOT NULL,
            version integer NOT NULL,
            url text NOT NULL,
            weight double precision NOT NULL CHECK (weight >= 0),
            state text NOT NULL CHECK (state IN ('active', 'draining')),
            created_at_s double precision NOT NULL,
            UNIQUE (model, version, url)
        );
    """),
    Migration(5, "tenants: every job belongs to one; hashed, scoped, revocable API keys", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
        CREATE INDEX IF NOT EXISTS jobs_tenant ON {s}.jobs (tenant, status, seq);
        CREATE TABLE IF NOT EXISTS {s}.api_keys (
            id text PRIMARY KEY,
            tenant text NOT NULL,
            name text NOT NULL,
            scopes text NOT NULL CHECK (scopes IN ('read', 'submit', 'admin')),
            key_hash text NOT NULL UNIQUE,
            created_at_s double precision NOT NULL,
            revoked_at_s double precision
        );
        CREATE INDEX IF NOT EXISTS api_keys_tenant ON {s}.api_keys (tenant, created_at_s);
    """),
    Migration(6, "deliveries per job; webhook endpoints disabled by a 410, per tenant", """
        ALTER TABLE {s}.outbox ADD COLUMN IF NOT EXISTS created_at_s double precision;
        CREATE INDEX IF NOT EXISTS outbox_job ON {s}.outbox (job_id);
        CREATE TABLE IF NOT EXISTS {s}.disabled_webhooks (
            tenant text NOT NULL,
            url text NOT NULL,
            disabled_at_s double precision NOT NULL,
            event_id text NOT NULL,
            PRIMARY KEY (tenant, url)
        );
    """),
    Migration(7, "async endpoints belong to a tenant", """
        ALTER TABLE {s}.endpoints ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
    """),
    Migration(8, "retention: when a job's files go, and when they went", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS retention_s double precision;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS outputs_expired_at_s double precision;
        ALTER TABLE {s}.endpoints ADD COLUMN IF NOT EXISTS retention_s double precision;
        CREATE INDEX IF NOT EXISTS jobs_finished ON {s}.jobs (finished_at_s) WHERE finished_at_s IS NOT NULL;
        CREATE INDEX IF NOT EXISTS jobs_unswept ON {s}.jobs (finished_at_s)
            WHERE finished_at_s IS NOT NULL AND outputs_expired_at_s IS NULL;
        CREATE INDEX IF NOT EXISTS jobs_input ON {s}.jobs (input_key);
    """),
    Migration(9, "each job's attempts, and the events its pipeline found", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS attempt_history jsonb NOT NULL DEFAULT '[]';
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS events jsonb NOT NULL DEFAULT '[]';
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS events_truncated boolean NOT NULL DEFAULT false;
    """),
    Migration(10, "what a successful run amounted to: seconds of video, events and detections", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS video_s double precision;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS events_total integer;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS detections_total integer;
    """),
    Migration(11, "the lane a job waits in: high, normal or low", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS priority text NOT NULL DEFAULT 'normal';
    """),
    Migration(12, "per-tenant fair share: each lane's virtual clock and tenants' tags; the waiting jobs' index", """
        CREATE TABLE IF NOT EXISTS {s}.fair_share (
            priority text NOT NULL,
            tenant text NOT NULL,
            vtime double precision NOT NULL,
            PRIMARY KEY (priority, tenant)
        );
        CREATE INDEX IF NOT EXISTS jobs_waiting ON {s}.jobs (priority, tenant, created_at_s, seq)
            WHERE status = 'queued' AND published_at_s IS NOT NULL;
    """),
    Migration(13, "a long video split into segment jobs: each segment's parent and place, a parent's count", """
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS parent_id text;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS segment_index integer;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS segments_total integer;
        ALTER TABLE {s}.jobs ADD COLUMN IF NOT EXISTS segments_done integer NOT NULL DEFAULT 0;
        CREATE INDEX IF NOT EXISTS jobs_parent ON {s}.jobs (parent_id, segment_index) WHERE parent_id IS NOT NULL;
    """),
)


def migrate(conn: Conn, schema: str) -> list[int]:
    """Apply the job store's steps not yet recorded in `schema`, in the caller's transaction; returns the
    versions applied."""
    return apply_migrations(conn, schema, MIGRATIONS)
