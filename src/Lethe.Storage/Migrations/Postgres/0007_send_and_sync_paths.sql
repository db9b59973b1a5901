-- The per-room index on events also carries the columns the unread count filters on, so counting a room's unread
-- messages can read the index alone instead of every event row after the read marker. Its (room_id,
-- stream_ordering) key serves every query the old index did. (SQLite's 0006 also rebuilds two tables WITHOUT ROWID;
-- PostgreSQL tables have no such distinction.)
CREATE INDEX events_room_stream_covering ON events(room_id, stream_ordering) INCLUDE (type, sender, redacted_by, rejected_reason, event_id);
DROP INDEX events_room_stream;
