-- jiancha schema, version 9: the cursor remembers which source it is a position in.
--
-- Transaction ids belong to one cluster: after a dump and restore, a logical
-- cutover or a DSN pointed at another database, new rows sort behind the
-- stored cursor and would be skipped without a trace. The daemon compares
-- these columns with the source's pg_control_system().system_identifier and
-- database oid before it reads, and refuses on a difference. NULL: not yet
-- known (a cursor from before this version); the next start adopts the
-- current source once. `jiancha db reset-cursor` sets them with the cursor.
ALTER TABLE jiancha.cursor
    ADD COLUMN system_identifier  bigint,            -- pg_control_system() of the source's cluster
    ADD COLUMN database_oid       oid,               -- the source database's oid in it
    ADD COLUMN database_name      text,              -- for messages only (a rename is no move)
    ADD COLUMN reset_from         timestamptz,       -- business time of the last reset-cursor
    ADD COLUMN reset_at           timestamptz;       -- when it ran
