-- speechsvc schema, version 1. Times are Unix seconds (double precision), as in the SQLite store.
CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    created_at          DOUBLE PRECISION NOT NULL,
    updated_at          DOUBLE PRECISION NOT NULL,
    finished_at         DOUBLE PRECISION,
    media_type          TEXT NOT NULL,
    audio_bytes         BIGINT NOT NULL,
    request             JSONB NOT NULL,
    progress            DOUBLE PRECISION NOT NULL DEFAULT 0,
    error               TEXT,
    result              JSONB,
    attempts            INTEGER NOT NULL DEFAULT 0,
    lease_expires_at    DOUBLE PRECISION,
    callback_started_at DOUBLE PRECISION,
    callback_outcome    JSONB,
    owner               TEXT,
    claimed_at          DOUBLE PRECISION
);
-- the claim query's index: only unfinished rows, so the queue stays small however long the history
CREATE INDEX jobs_claimable ON jobs (created_at) WHERE status IN ('Queued', 'Pending');
CREATE INDEX jobs_by_owner ON jobs (owner, status);
CREATE INDEX jobs_by_finish ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_sha256   TEXT NOT NULL UNIQUE,
    created_at   DOUBLE PRECISION NOT NULL,
    last_used_at DOUBLE PRECISION,
    revoked_at   DOUBLE PRECISION,
    scope        TEXT NOT NULL DEFAULT 'tenant'
);
CREATE TABLE rate_events (
    identity TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_events_by_identity ON rate_events (identity, at);
CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,
    file_name      TEXT NOT NULL,
    mime_type      TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL,
    received_bytes BIGINT NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,
    token_sha256   TEXT NOT NULL,
    sha256         TEXT,
    created_at     DOUBLE PRECISION NOT NULL,
    expires_at     DOUBLE PRECISION NOT NULL,
    completed_at   DOUBLE PRECISION,
    owner          TEXT
);
CREATE INDEX uploads_by_expiry ON uploads (state, expires_at);
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL,
    owner           TEXT
);
CREATE INDEX webhooks_due ON webhooks (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhooks_by_job ON webhooks (job_id);
-- bytes of job audio ('job:<id>') and uploads ('upload:<id>'), in chunks of at most 1 MiB
CREATE TABLE blobs (
    key          TEXT NOT NULL,
    offset_bytes BIGINT NOT NULL,
    data         BYTEA NOT NULL,
    PRIMARY KEY (key, offset_bytes)
);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;  -- audio does not compress: skip trying
