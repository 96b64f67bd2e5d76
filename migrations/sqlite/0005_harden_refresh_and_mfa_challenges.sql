-- Each rotation clears the sealed successors whose retry window has passed, of any
-- session: this index holds only the rows that still carry one, so that sweep reads a
-- handful of entries however long the rotation history grows.
CREATE INDEX refresh_tokens_sealed ON refresh_tokens (used_at)
    WHERE sealed_successor IS NOT NULL;

-- Seals kept by earlier versions whose successor has itself been rotated can never be
-- replayed: clear them now. (At most one seal per session is left, each cleared by the
-- next rotations once its window has passed; clearing those here too would turn a retry
-- in flight during the upgrade into reuse.)
UPDATE refresh_tokens SET sealed_successor = NULL
WHERE sealed_successor IS NOT NULL
  AND successor_hash IN (SELECT token_hash FROM refresh_tokens WHERE used_at IS NOT NULL);

-- A login's second step stands only while the password its first step verified is still
-- the user's. Challenges written before this column existed carry none and so fail their
-- second step (they live five minutes; the user signs in again).
ALTER TABLE mfa_challenges ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
