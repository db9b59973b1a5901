-- Push rule outcomes of each event that notifies anyone: instead of one row per (user, event), which would make a
-- send into a room of 1,000 members write 1,000 rows, one row per event holds the outcome shared by most local
-- members (base_outcome) and the members whose outcome differs, as "\n<user ID>\t<outcome>" entries. An outcome
-- is 0 (nothing), or 1 notify | 2 highlight | 4 sound. Counts join events, so a redacted or expired event stops
-- counting at once; the retention purge deletes these rows with their events.
CREATE TABLE event_push_actions (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    thread_id TEXT,
    base_outcome BIGINT NOT NULL,
    exceptions TEXT NOT NULL
);
CREATE INDEX event_push_actions_room ON event_push_actions(room_id, stream_ordering);

-- HTTP pushers: where to send a user's notifications. device_id is the device whose access token set the pusher
-- (deleting the device deletes the pusher).
CREATE TABLE pushers (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    kind TEXT NOT NULL,
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag TEXT,
    lang TEXT NOT NULL,
    data TEXT NOT NULL,
    device_id TEXT,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey)
);
CREATE INDEX pushers_key ON pushers(app_id, pushkey);
