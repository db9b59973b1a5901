-- The media repository. The bytes live on disk under media_store_path (local_content/aa/bb/rest, as Synapse lays
-- them out); these rows hold what the disk does not: who uploaded what, when, under which name and type.
-- A row with size NULL is a reservation from POST /_matrix/media/v1/create whose bytes have not arrived yet.
-- authenticated: uploaded while enable_authenticated_media was on, so never served by the legacy unauthenticated
-- /_matrix/media/v3/download|thumbnail endpoints (Synapse's "frozen" rule).
CREATE TABLE media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    upload_name TEXT,
    size BIGINT,
    created_ts BIGINT NOT NULL,
    unused_expires_ts BIGINT,
    last_access_ts BIGINT,
    authenticated BOOLEAN NOT NULL DEFAULT TRUE,
    quarantined_by TEXT,
    safe_from_quarantine BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX media_user ON media(user_id, created_ts);
CREATE INDEX media_created ON media(created_ts);

-- Thumbnails generated on demand and cached on disk (local_thumbnails/aa/bb/rest/W-H-type-subtype-method).
CREATE TABLE media_thumbnails (
    media_id TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    method TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (media_id, width, height, method, content_type)
);

-- Which events name which local media (mxc://this-server/id anywhere in their JSON), so that when retention purges
-- or prunes the last event naming an item, the item's bytes go too. media.referenced remembers that an item was
-- ever named by an event: media nobody ever sent (a fresh upload, an avatar set only in a profile) is never
-- collected this way. Encrypted events hide their URLs from the server and so cannot be tracked.
CREATE TABLE media_references (
    media_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (media_id, event_id)
);
CREATE INDEX media_references_event ON media_references(event_id);
ALTER TABLE media ADD COLUMN referenced BOOLEAN NOT NULL DEFAULT FALSE;
