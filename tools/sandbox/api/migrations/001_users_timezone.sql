-- 1.1.0: users get a time zone (nullable, so no table rewrite and no long lock)
SET lock_timeout = '5s';
ALTER TABLE users ADD COLUMN timezone text;
