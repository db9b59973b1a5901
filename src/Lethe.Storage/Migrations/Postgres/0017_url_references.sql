-- Which events name which URL (url_hash: SHA-256 hex of the URL, as url_previews keys it), so that the cached previews
-- of a link, a derived copy of the message that named it, go when the last message naming it is purged or pruned.
-- Events stored before this table existed have no rows; their previews expired within the hour anyway.
CREATE TABLE url_references (
    event_id TEXT NOT NULL,
    url_hash TEXT NOT NULL,
    PRIMARY KEY (event_id, url_hash)
);
CREATE INDEX url_references_url ON url_references(url_hash);
