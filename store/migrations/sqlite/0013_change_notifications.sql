-- Issue 7: on PostgreSQL, triggers tell other nodes and stand-alone responders what changed
-- (LISTEN/NOTIFY, see the PostgreSQL copy of this migration). SQLite has no such channel: its
-- readers poll, so this version changes nothing here and only keeps the two histories aligned.
SELECT 1;
