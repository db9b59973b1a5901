-- Local accounts. password_hash is an Argon2id PHC string, or NULL for accounts that cannot log in with a password.
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_guest BOOLEAN NOT NULL DEFAULT FALSE,
    user_type TEXT,
    appservice_id TEXT,
    deactivated BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts BIGINT NOT NULL
);

-- One row per stream (events, account data, receipts, ...): the last position handed out.
-- Allocating takes the row's lock, so positions commit in the order they are handed out on both engines.
CREATE TABLE stream_positions (
    stream TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
