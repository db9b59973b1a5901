-- URL previews (GET /_matrix/client/v1/media/preview_url), cached as Synapse does for an hour. Previews are not
-- per-user data: no row says who asked. url_hash is the SHA-256 (hex) of the URL as requested, so a long URL never
-- exceeds an index's key size; og is the OpenGraph JSON served; image_media_id the local media holding og:image.
-- Several rows per URL may exist (one per fetch) so that a request's ts picks the preview of that time.
CREATE TABLE url_previews (
    url_hash TEXT NOT NULL,
    fetched_ts BIGINT NOT NULL,
    url TEXT NOT NULL,
    expires_ts BIGINT NOT NULL,
    og TEXT NOT NULL,
    image_media_id TEXT,
    PRIMARY KEY (url_hash, fetched_ts)
);
CREATE INDEX url_previews_expires ON url_previews(expires_ts);
CREATE INDEX url_previews_image ON url_previews(image_media_id);
