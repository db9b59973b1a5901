-- erase_delay: an erasure takes effect for readers at once, but the irreversible deletion of the user's data waits
-- until purge_after_ts (a grace period in which an admin can still cancel it). Earlier erasures are complete.
ALTER TABLE erased_users ADD COLUMN purge_after_ts BIGINT;
ALTER TABLE erased_users ADD COLUMN purged BOOLEAN NOT NULL DEFAULT TRUE;
