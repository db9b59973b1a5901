-- When a background job runs next, kept in the database so the schedule survives restarts: a server restarted more
-- often than a job's interval still runs it, and an interrupted run resumes at start-up. Deletions that a room's
-- min_lifetime put off are one-off jobs here too, due when the hold ends.
ALTER TABLE background_jobs ADD COLUMN next_run_ts BIGINT;
