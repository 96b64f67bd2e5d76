-- ASVS 7.4.2: an operator can disable an account. Set, no password opens it and no link
-- resets it; NULL is an ordinary account. Nullable, so every existing user stays enabled.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;
