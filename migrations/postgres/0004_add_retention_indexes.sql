-- Retention (`purge_expired`) deletes in bounded batches by age; these indexes let each
-- batch find its rows without scanning the table. A session has ended when it was revoked
-- or either deadline passed, so each of the three columns gets one (both databases answer the OR
-- with one index per term). The refresh history of a session is found through
-- refresh_tokens_by_session and expired challenges through mfa_challenges_by_expiry (0001,
-- 0002). idle_expires_at changes on every refresh, so its index is a small write cost on
-- that path; the alternative, waiting for the absolute deadline, would keep idle-expired
-- sessions for weeks longer than configured.

CREATE INDEX sessions_by_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_by_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_by_absolute_expiry ON sessions (absolute_expires_at);
CREATE INDEX security_events_by_at ON security_events (at);
