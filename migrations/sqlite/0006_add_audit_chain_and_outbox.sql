-- Issue 11: each user's security events form a hash chain; notifications wait in an outbox
-- written with their event; password resets wait as hashed tokens.
--
-- The chain columns stay nullable: events written before this migration are linked by the
-- store's migrate() in Rust (the hash is SHA-256 over an encoding defined in
-- tessera_app::audit), which then leaves no NULL behind.
ALTER TABLE security_events ADD COLUMN chain_index INTEGER;
ALTER TABLE security_events ADD COLUMN prev_hash BLOB CHECK (length(prev_hash) = 32);
ALTER TABLE security_events ADD COLUMN hash BLOB CHECK (length(hash) = 32);
CREATE UNIQUE INDEX security_events_chain ON security_events (user_id, chain_index);
-- Finds what migrate() still has to link; empty once it has.
CREATE INDEX security_events_unchained ON security_events (user_id) WHERE chain_index IS NULL;

-- One row per user with events. Appends to the chain and retention's moves of the
-- checkpoint update it inside the writer's BEGIN IMMEDIATE transactions.
CREATE TABLE audit_chains (
    user_id          BLOB    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    head_index       INTEGER NOT NULL,               -- the last event's index (0: none yet)
    head_hash        BLOB    NOT NULL CHECK (length(head_hash) = 32),
    checkpoint_index INTEGER NOT NULL,               -- the last event retention deleted
    checkpoint_hash  BLOB    NOT NULL CHECK (length(checkpoint_hash) = 32),
    purged           INTEGER NOT NULL DEFAULT 0,     -- how many events retention deleted
    CHECK (checkpoint_index <= head_index)
) STRICT;

-- One row per notification and channel. No foreign key to the event: retention may
-- delete the event before a long-failing channel gives up.
CREATE TABLE notification_outbox (
    id              BLOB    NOT NULL CHECK (length(id) = 16),
    channel         TEXT    NOT NULL,
    event_id        BLOB    NOT NULL,
    user_id         BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email           TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    session_id      BLOB,
    ip              TEXT,
    user_agent      TEXT,
    detail          TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail)),
    sealed_secret   BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    dead_at         INTEGER,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (id, channel)
) STRICT;
-- What workers claim: live rows by due time.
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at)
    WHERE dead_at IS NULL;

-- At most one pending reset per user: a new request replaces the old link.
CREATE TABLE password_resets (
    user_id    BLOB    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
