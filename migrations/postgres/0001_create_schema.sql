-- Tessera's first schema (PostgreSQL): users, sessions with their refresh-rotation
-- history, signing keys and security events. Timestamps are TIMESTAMPTZ (microseconds).

CREATE TABLE users (
    id               UUID        PRIMARY KEY,
    email            TEXT        NOT NULL,          -- as the user typed it
    email_normalized TEXT        NOT NULL,          -- lower-cased; what lookups use
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_email_normalized_key UNIQUE (email_normalized)
);

CREATE TABLE password_credentials (
    user_id    UUID        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT        NOT NULL,                -- PHC string (Argon2id)
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE user_roles (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT COLLATE "C" NOT NULL,              -- byte order, like the Rust side
    PRIMARY KEY (user_id, role)
);

CREATE TABLE sessions (
    id                   UUID        PRIMARY KEY,
    user_id              UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id            TEXT        NOT NULL,
    device_name          TEXT,
    user_agent           TEXT,
    ip                   TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    last_seen_at         TIMESTAMPTZ NOT NULL,
    idle_expires_at      TIMESTAMPTZ NOT NULL,
    absolute_expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at           TIMESTAMPTZ,
    revoked_reason       TEXT,
    acr                  TEXT        NOT NULL CHECK (acr IN ('aal1', 'aal2')),
    auth_time            TIMESTAMPTZ NOT NULL,
    mfa_verified_at      TIMESTAMPTZ,
    current_refresh_hash BYTEA       NOT NULL CHECK (octet_length(current_refresh_hash) = 32),
    refresh_generation   BIGINT      NOT NULL DEFAULT 0,
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

-- One live session per user and device: a second login on the device supersedes the first.
CREATE UNIQUE INDEX sessions_one_live_per_device
    ON sessions (user_id, device_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_by_user ON sessions (user_id, last_seen_at DESC);

-- Every refresh token a session ever had, so a reused (rotated) token is recognised.
CREATE TABLE refresh_tokens (
    token_hash       BYTEA       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id       UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation       BIGINT      NOT NULL,
    issued_at        TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ,
    successor_hash   BYTEA,
    sealed_successor BYTEA
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid         TEXT        PRIMARY KEY,
    public_key  BYTEA       NOT NULL CHECK (octet_length(public_key) = 32),
    sealed_seed BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE security_events (
    id         UUID        PRIMARY KEY,
    user_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    session_id UUID,                                -- no FK: events outlive sessions
    detail     JSONB       NOT NULL DEFAULT '{}'
);
CREATE INDEX security_events_by_user ON security_events (user_id, at DESC);
