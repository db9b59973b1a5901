CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT NOT NULL,
    is_public BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts BIGINT NOT NULL,
    current_state_group BIGINT
);

-- Every event, as the canonical JSON of its federation form. stream_ordering is the position in the events stream
-- (sync tokens, /messages). state_group is the room state *before* the event. A redacted event keeps its JSON until
-- the redaction GC prunes it; redacted_by marks that it must be served redacted. sender_device and txn_id say which
-- local device sent it under which transaction ID (echoed to that device as unsigned.transaction_id).
CREATE TABLE events (
    event_id TEXT PRIMARY KEY,
    stream_ordering BIGINT NOT NULL UNIQUE,
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    depth BIGINT NOT NULL,
    state_group BIGINT NOT NULL,
    json BYTEA NOT NULL,
    rejected_reason TEXT,
    redacted_by TEXT,
    received_ts BIGINT NOT NULL,
    sender_device TEXT,
    txn_id TEXT
);
CREATE INDEX events_room_stream ON events(room_id, stream_ordering);
CREATE INDEX events_members ON events(state_key, room_id, stream_ordering) WHERE type = 'm.room.member';

-- The events no other event yet follows: the prev_events of the next event sent in the room.
CREATE TABLE room_forward_extremities (
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- Room state snapshots as deltas: a group holds the entries that differ from prev_group (or all entries when
-- prev_group is null). chain_length bounds how many deltas a lookup walks.
CREATE TABLE state_groups (
    id BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    prev_group BIGINT,
    chain_length INTEGER NOT NULL
);
CREATE TABLE state_group_entries (
    state_group BIGINT NOT NULL REFERENCES state_groups(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (state_group, type, state_key)
);

-- The room's current state, with membership denormalised for "which rooms is this user in" queries.
CREATE TABLE current_state (
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_members ON current_state(state_key, membership) WHERE type = 'm.room.member';

-- Client transaction IDs, so a retried send returns the original event (also across restarts).
CREATE TABLE event_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, scope, txn_id)
);

-- m.relates_to of each event, for /relations, threads, edits and aggregations.
CREATE TABLE event_relations (
    event_id TEXT PRIMARY KEY REFERENCES events(event_id) ON DELETE CASCADE,
    room_id TEXT NOT NULL,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    aggregation_key TEXT
);
CREATE INDEX event_relations_target ON event_relations(relates_to_id, rel_type);

-- Rooms a user has forgotten (after leaving): hidden from their sync.
CREATE TABLE room_forgotten (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);

CREATE TABLE room_aliases (
    room_alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    creator TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases(room_id);
