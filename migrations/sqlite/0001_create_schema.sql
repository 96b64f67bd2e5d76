-- Tessera's first schema (SQLite): users, sessions with their refresh-rotation history,
-- signing keys and security events. STRICT tables; UUIDs and hashes are BLOBs;
-- timestamps are INTEGER microseconds since the Unix epoch (exact, and they compare
-- correctly in SQL).

CREATE TABLE users (
    id               BLOB    PRIMARY KEY CHECK (length(id) = 16),
    email            TEXT    NOT NULL,              -- as the user typed it
    email_normalized TEXT    NOT NULL UNIQUE,       -- lower-cased; what lookups use
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE password_credentials (
    user_id    BLOB    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT    NOT NULL,                    -- PHC string (Argon2id)
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE user_roles (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
) STRICT;

CREATE TABLE sessions (
    id                   BLOB    PRIMARY KEY CHECK (length(id) = 16),
    user_id              BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id            TEXT    NOT NULL,
    device_name          TEXT,
    user_agent           TEXT,
    ip                   TEXT,
    created_at           INTEGER NOT NULL,
    last_seen_at         INTEGER NOT NULL,
    idle_expires_at      INTEGER NOT NULL,
    absolute_expires_at  INTEGER NOT NULL,
    revoked_at           INTEGER,
    revoked_reason       TEXT,
    acr                  TEXT    NOT NULL CHECK (acr IN ('aal1', 'aal2')),
    auth_time            INTEGER NOT NULL,
    mfa_verified_at      INTEGER,
    current_refresh_hash BLOB    NOT NULL CHECK (length(current_refresh_hash) = 32),
    refresh_generation   INTEGER NOT NULL DEFAULT 0,
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
) STRICT;

-- One live session per user and device: a second login on the device supersedes the first.
CREATE UNIQUE INDEX sessions_one_live_per_device
    ON sessions (user_id, device_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_by_user ON sessions (user_id, last_seen_at DESC);

-- Every refresh token a session ever had, so a reused (rotated) token is recognised.
CREATE TABLE refresh_tokens (
    token_hash       BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id       BLOB    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation       INTEGER NOT NULL,
    issued_at        INTEGER NOT NULL,
    used_at          INTEGER,
    successor_hash   BLOB,
    sealed_successor BLOB
) STRICT;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    public_key  BLOB    NOT NULL CHECK (length(public_key) = 32),
    sealed_seed BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE security_events (
    id         BLOB    PRIMARY KEY CHECK (length(id) = 16),
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    session_id BLOB,                                -- no FK: events outlive sessions
    detail     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
) STRICT;
CREATE INDEX security_events_by_user ON security_events (user_id, at DESC);
