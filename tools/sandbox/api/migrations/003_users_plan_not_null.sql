-- 1.4.0: a NOT NULL column without a default on a table with rows: fails ("contains null values"),
-- after 002 already committed - the half-applied migration a pre-migration backup is for
SET lock_timeout = '5s';
ALTER TABLE users ADD COLUMN plan text;
ALTER TABLE users ALTER COLUMN plan SET NOT NULL;
