-- 1.4.0: drop refresh tokens that are revoked, and keep a trace of the cleanup
SET lock_timeout = '5s';
CREATE TABLE token_cleanups (id bigserial PRIMARY KEY, removed integer NOT NULL, at timestamptz NOT NULL DEFAULT now());
WITH removed AS (DELETE FROM refresh_tokens WHERE revoked RETURNING 1)
INSERT INTO token_cleanups (removed) SELECT count(*) FROM removed;
