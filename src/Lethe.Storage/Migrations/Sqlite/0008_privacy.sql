-- Redacted events whose original content is still stored, with when the redaction arrived: redaction GC replaces the
-- stored JSON with its redacted form once redaction_retention_period has passed (and the room's min_lifetime allows).
CREATE TABLE redaction_gc_queue (
    event_id TEXT PRIMARY KEY,
    redacted_ts BIGINT NOT NULL
);
CREATE INDEX redaction_gc_queue_ts ON redaction_gc_queue(redacted_ts, event_id);

-- Events redacted before this migration: their redactions' arrival times start the period.
INSERT INTO redaction_gc_queue (event_id, redacted_ts)
    SELECT e.event_id, r.received_ts FROM events e JOIN events r ON r.event_id = e.redacted_by;

-- Users erased at deactivation (erase: true). Their events are served redacted to anyone who was not in the room
-- when they were sent; their account can never be reactivated.
CREATE TABLE erased_users (
    user_id TEXT PRIMARY KEY,
    erased_ts BIGINT NOT NULL
);

-- When each user forgot a room: forgotten_room_retention_period counts from the last local user's forget.
-- Rooms forgotten before this migration count from now.
ALTER TABLE room_forgotten ADD COLUMN forgotten_ts BIGINT NOT NULL DEFAULT 0;
UPDATE room_forgotten SET forgotten_ts = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
