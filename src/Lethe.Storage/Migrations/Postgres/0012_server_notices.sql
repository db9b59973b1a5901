-- The room each user receives server notices in (created on the first notice; a new one if they left it).
CREATE TABLE server_notice_rooms (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
