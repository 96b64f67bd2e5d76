-- TOTP factors, recovery codes and login second-step challenges (PostgreSQL). Sealed
-- secrets are AEAD ciphertexts under the master key; codes and challenge tokens are
-- stored only as SHA-256 hashes. Timestamps are TIMESTAMPTZ (microseconds), as in 0001.

-- A user's TOTP factor: pending from setup until confirmed, then enabled.
CREATE TABLE user_totp (
    user_id            UUID        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret      BYTEA,                       -- the enabled secret
    enabled_at         TIMESTAMPTZ,
    pending_sealed     BYTEA,                       -- a secret from setup, not yet confirmed
    pending_created_at TIMESTAMPTZ,
    last_step          BIGINT,                      -- last TOTP time step accepted (replay guard)
    CHECK ((sealed_secret IS NULL) = (enabled_at IS NULL)),
    CHECK ((pending_sealed IS NULL) = (pending_created_at IS NULL))
);

-- Single-use recovery codes; a used code is kept (with when) until the set is replaced.
CREATE TABLE recovery_codes (
    user_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA       NOT NULL CHECK (octet_length(code_hash) = 32),
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

-- A password-verified login waiting for its second factor (the single-use `mfa_token`).
CREATE TABLE mfa_challenges (
    token_hash  BYTEA       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id     UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id   TEXT        NOT NULL,
    device_name TEXT,
    user_agent  TEXT,
    ip          TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
