-- Events written in the same microsecond (one request records several) need a stable
-- order: the order they were written in.
ALTER TABLE security_events ADD COLUMN seq BIGSERIAL;
DROP INDEX security_events_by_user;
CREATE INDEX security_events_by_user ON security_events (user_id, at DESC, seq DESC);
