"""The SQLite job store's tables: SCHEMA as the first release made them, then MIGRATIONS, applied in order
once each (PRAGMA user_version counts them) when a store opens."""

from __future__ import annotations

from framequeue.db.sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    pipeline TEXT NOT NULL,
    pipeline_version TEXT NOT NULL,
    input_key TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    updated_at_s REAL NOT NULL,
    expires_at_s REAL NOT NULL,
    timeout_s REAL NOT NULL,
    max_attempts INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at_s REAL,
    finished_at_s REAL,
    lease_owner TEXT,
    lease_token INTEGER NOT NULL DEFAULT 0,
    lease_deadline_s REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER,
    fps REAL NOT NULL DEFAULT 0,
    eta_s REAL,
    error_code TEXT,
    error_message TEXT,
    outputs TEXT NOT NULL DEFAULT '{}',
    webhook_url TEXT,
    webhook_secret TEXT,
    attributes TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    published_at_s REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_seq ON jobs (seq);
CREATE INDEX IF NOT EXISTS jobs_unpublished ON jobs (status, published_at_s, created_at_s);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_s REAL NOT NULL,
    delivered_at_s REAL,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at_s, dead, next_attempt_at_s);
"""

#: steps after SCHEMA, applied in order once each (PRAGMA user_version counts them)
MIGRATIONS: tuple[str, ...] = (
    """
    ALTER TABLE jobs ADD COLUMN endpoint TEXT;
    ALTER TABLE jobs ADD COLUMN output_uri TEXT;
    ALTER TABLE jobs ADD COLUMN failure_uri TEXT;
    ALTER TABLE jobs ADD COLUMN error_webhook_url TEXT;
    CREATE TABLE IF NOT EXISTS endpoints (
        name TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        params TEXT NOT NULL,
        output_path TEXT NOT NULL,
        failure_path TEXT,
        success_webhook TEXT,
        error_webhook TEXT,
        webhook_secret TEXT,
        max_concurrent_invocations INTEGER NOT NULL,
        created_at_s REAL NOT NULL
    );
    """,
    """
    CREATE TABLE IF NOT EXISTS model_endpoints (
        id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        url TEXT NOT NULL,
        weight REAL NOT NULL CHECK (weight >= 0),
        state TEXT NOT NULL CHECK (state IN ('active', 'draining')),
        created_at_s REAL NOT NULL,
        UNIQUE (model, version, url)
    );
    """,
    """
    ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, status, seq);
    CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL CHECK (scopes IN ('read', 'submit', 'admin')),
        key_hash TEXT NOT NULL UNIQUE,
        created_at_s REAL NOT NULL,
        revoked_at_s REAL
    );
    CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, created_at_s);
    """,
    """
    ALTER TABLE outbox ADD COLUMN created_at_s REAL;
    CREATE INDEX IF NOT EXISTS outbox_job ON outbox (job_id);
    CREATE TABLE IF NOT EXISTS disabled_webhooks (
        tenant TEXT NOT NULL,
        url TEXT NOT NULL,
        disabled_at_s REAL NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (tenant, url)
    );
    """,
    """
    ALTER TABLE endpoints ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
    """,
    """
    ALTER TABLE jobs ADD COLUMN retention_s REAL;
    ALTER TABLE jobs ADD COLUMN outputs_expired_at_s REAL;
    ALTER TABLE endpoints ADD COLUMN retention_s REAL;
    CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at_s);
    CREATE INDEX IF NOT EXISTS jobs_unswept ON jobs (finished_at_s) WHERE outputs_expired_at_s IS NULL;
    CREATE INDEX IF NOT EXISTS jobs_input ON jobs (input_key);
    """,
    """
    ALTER TABLE jobs ADD COLUMN attempt_history TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN events TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN events_truncated INTEGER NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE jobs ADD COLUMN video_s REAL;
    ALTER TABLE jobs ADD COLUMN events_total INTEGER;
    ALTER TABLE jobs ADD COLUMN detections_total INTEGER;
    """,
    """
    ALTER TABLE jobs ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
    """,
    """
    CREATE TABLE IF NOT EXISTS fair_share (
        priority TEXT NOT NULL,
        tenant TEXT NOT NULL,
        vtime REAL NOT NULL,
        PRIMARY KEY (priority, tenant)
    );
    CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs (priority, tenant, created_at_s, seq)
        WHERE status = 'queued' AND published_at_s IS NOT NULL;
    """,
    """
    ALTER TABLE jobs ADD COLUMN parent_id TEXT;
    ALTER TABLE jobs ADD COLUMN segment_index INTEGER;
    ALTER TABLE jobs ADD COLUMN segments_total INTEGER;
    ALTER TABLE jobs ADD COLUMN segments_done INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id, segment_index) WHERE parent_id IS NOT NULL;
    """,
)


def prepare(db: Database) -> None:
    """Create the tables and apply the migrations this file lacks."""
    db.conn().executescript(SCHEMA)
    with db.write() as conn:  # the write lock: two processes opening at once migrate once
        done = conn.execute("PRAGMA user_version").fetchone()[0]
        for version, step in enumerate(MIGRATIONS[done:], start=done + 1):
            for statement in filter(str.strip, step.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
