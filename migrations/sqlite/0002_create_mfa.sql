-- TOTP factors, recovery codes and login second-step challenges (SQLite). Sealed secrets
-- are AEAD ciphertexts under the master key; codes and challenge tokens are stored only
-- as SHA-256 hashes. Timestamps are INTEGER microseconds since the Unix epoch, as in 0001.

-- A user's TOTP factor: pending from setup until confirmed, then enabled.
CREATE TABLE user_totp (
    user_id            BLOB    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret      BLOB,                        -- the enabled secret
    enabled_at         INTEGER,
    pending_sealed     BLOB,                        -- a secret from setup, not yet confirmed
    pending_created_at INTEGER,
    last_step          INTEGER,                     -- last TOTP time step accepted (replay guard)
    CHECK ((sealed_secret IS NULL) = (enabled_at IS NULL)),
    CHECK ((pending_sealed IS NULL) = (pending_created_at IS NULL))
) STRICT;

-- Single-use recovery codes; a used code is kept (with when) until the set is replaced.
CREATE TABLE recovery_codes (
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL CHECK (length(code_hash) = 32),
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- A password-verified login waiting for its second factor (the single-use `mfa_token`).
CREATE TABLE mfa_challenges (
    token_hash  BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id   TEXT    NOT NULL,
    device_name TEXT,
    user_agent  TEXT,
    ip          TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
