CREATE TABLE IF NOT EXISTS jobs (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL,
    finished_at         REAL,
    media_type          TEXT NOT NULL,
    audio_path          TEXT NOT NULL,
    audio_bytes         INTEGER NOT NULL,
    request             TEXT NOT NULL,
    progress            REAL NOT NULL DEFAULT 0,
    error               TEXT,
    result              TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    lease_expires_at    REAL,
    callback_started_at REAL,
    callback_outcome    TEXT,
    owner               TEXT,
    claimed_at          REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (finished_at);
CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_sha256   TEXT NOT NULL UNIQUE,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL,
    scope        TEXT NOT NULL DEFAULT 'tenant'
);
CREATE TABLE IF NOT EXISTS uploads (
    id             TEXT PRIMARY KEY,
    file_name      TEXT NOT NULL,
    mime_type      TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    received_bytes INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,
    token_sha256   TEXT NOT NULL,
    sha256         TEXT,
    path           TEXT NOT NULL,
    created_at     REAL NOT NULL,
    expires_at     REAL NOT NULL,
    completed_at   REAL,
    owner          TEXT
);
CREATE INDEX IF NOT EXISTS uploads_by_expiry ON uploads (state, expires_at);
CREATE TABLE IF NOT EXISTS webhooks (
    id              TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    owner           TEXT
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_attempt_at);
