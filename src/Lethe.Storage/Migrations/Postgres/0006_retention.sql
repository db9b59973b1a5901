-- Server admins' per-room retention overrides (they win over the room's m.room.retention event).
CREATE TABLE room_retention_overrides (
    room_id TEXT PRIMARY KEY,
    min_lifetime BIGINT,
    max_lifetime BIGINT,
    updated_ts BIGINT NOT NULL
);

-- Events that carry org.matrix.self_destruct_after (MSC2228): when to redact them.
CREATE TABLE event_expiries (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    expiry_ts BIGINT NOT NULL
);
CREATE INDEX event_expiries_ts ON event_expiries(expiry_ts);

-- Background jobs (retention purges, later GC jobs): a lease so one instance runs each job at a time, and what the
-- last run did, for the admin API.
CREATE TABLE background_jobs (
    job TEXT PRIMARY KEY,
    lease_holder TEXT,
    lease_expires_ts BIGINT,
    last_started_ts BIGINT,
    last_finished_ts BIGINT,
    last_items BIGINT NOT NULL DEFAULT 0,
    total_items BIGINT NOT NULL DEFAULT 0,
    last_error TEXT
);
