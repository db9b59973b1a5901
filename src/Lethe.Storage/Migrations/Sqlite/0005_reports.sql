-- Content reports from users (client-server "Reporting content"): an event (room_id and event_id set), a room
-- (room_id only) or a user (target_user_id only). user_id is the reporter. Kept for administrators to review; no
-- foreign keys, so a report outlives the room or event it names (the evidence of what was reported matters).
CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    room_id TEXT,
    event_id TEXT,
    target_user_id TEXT,
    user_id TEXT NOT NULL,
    reason TEXT,
    score BIGINT,
    received_ts BIGINT NOT NULL
);
CREATE INDEX reports_received ON reports(received_ts);

-- GET /threads lists a room's thread roots by latest reply; without this it would scan every relation of the server.
CREATE INDEX event_relations_room ON event_relations(room_id, rel_type, relates_to_id);

-- GET /timestamp_to_event looks for the event closest to a time in one room.
CREATE INDEX events_room_ts ON events(room_id, origin_server_ts);
