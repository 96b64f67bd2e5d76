-- Events written in the same microsecond (one request records several) need a stable
-- order: the order they were written in. SQLite already keeps it as the rowid (writes are
-- serialised through one connection), and every index entry ends with the rowid, so the
-- existing (user_id, at DESC) index serves ORDER BY at DESC, rowid DESC. Nothing to change;
-- this file keeps the migration sets of both backends in step.
SELECT 1;
