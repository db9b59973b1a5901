-- Which version of the privacy policy each user consented to, and when (user_consent).
CREATE TABLE user_consents (
    user_id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    consented_ts BIGINT NOT NULL
);

-- The policy version each user was last sent the consent server notice for (once per version).
CREATE TABLE consent_notices (
    user_id TEXT PRIMARY KEY,
    version TEXT NOT NULL
);
