-- Issue 11: each user's security events form a hash chain; notifications wait in an outbox
-- written with their event; password resets wait as hashed tokens.
--
-- The chain columns stay nullable: events written before this migration are linked by the
-- store's migrate() in Rust (the hash is SHA-256 over an encoding defined in
-- tessera_app::audit), which then leaves no NULL behind.
ALTER TABLE security_events
    ADD COLUMN chain_index BIGINT,
    ADD COLUMN prev_hash   BYTEA CHECK (octet_length(prev_hash) = 32),
    ADD COLUMN hash        BYTEA CHECK (octet_length(hash) = 32);
CREATE UNIQUE INDEX security_events_chain ON security_events (user_id, chain_index);
-- Finds what migrate() still has to link; empty once it has.
CREATE INDEX security_events_unchained ON security_events (user_id) WHERE chain_index IS NULL;

-- One row per user with events. Its row lock serialises appends to the chain (so
-- concurrent events never fork it) and retention's moves of the checkpoint.
CREATE TABLE audit_chains (
    user_id          UUID   PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    head_index       BIGINT NOT NULL,                -- the last event's index (0: none yet)
    head_hash        BYTEA  NOT NULL CHECK (octet_length(head_hash) = 32),
    checkpoint_index BIGINT NOT NULL,                -- the last event retention deleted
    checkpoint_hash  BYTEA  NOT NULL CHECK (octet_length(checkpoint_hash) = 32),
    purged           BIGINT NOT NULL DEFAULT 0,      -- how many events retention deleted
    CHECK (checkpoint_index <= head_index)
);

-- One row per notification and channel. No foreign key to the event: retention may
-- delete the event before a long-failing channel gives up.
CREATE TABLE notification_outbox (
    id              UUID        NOT NULL,
    channel         TEXT        NOT NULL,
    event_id        UUID        NOT NULL,
    user_id         UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email           TEXT        NOT NULL,
    kind            TEXT        NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    session_id      UUID,
    ip              TEXT,
    user_agent      TEXT,
    detail          JSONB       NOT NULL DEFAULT '{}',
    sealed_secret   BYTEA,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    dead_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (id, channel)
);
-- What workers claim: live rows by due time.
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at)
    WHERE dead_at IS NULL;

-- At most one pending reset per user: a new request replaces the old link.
CREATE TABLE password_resets (
    user_id    UUID        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
