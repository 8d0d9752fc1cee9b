-- Sample data of a typical web app: users and their sessions, security events, organisations,
-- orders and an audit trail; tens of thousands of rows of uuids, text, jsonb and timestamps.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    plan        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid REFERENCES organizations (id),
    email         text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    settings      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    last_login_at timestamptz
);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  text NOT NULL,
    user_agent  text,
    expires_at  timestamptz NOT NULL,
    revoked     boolean NOT NULL DEFAULT false
);

CREATE TABLE security_events (
    id          bigserial PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    kind        text NOT NULL,
    ip          inet,
    details     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    total_cents integer NOT NULL,
    currency    text NOT NULL,
    items       jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,
    action      text NOT NULL,
    payload     jsonb,
    created_at  timestamptz NOT NULL
);

INSERT INTO organizations (name, plan, created_at)
SELECT 'org-' || i || '-' || substr(md5(random()::text), 1, 8),
       (ARRAY['free', 'team', 'business'])[1 + (i % 3)],
       now() - (random() * interval '900 days')
FROM generate_series(1, 500) AS i;

CREATE TEMP TABLE org_ids AS SELECT row_number() OVER () AS n, id FROM organizations;

INSERT INTO users (organization_id, email, display_name, password_hash, settings, created_at, last_login_at)
SELECT o.id,
       'user' || i || '@example.com',
       initcap(substr(md5(i::text), 1, 6)) || ' ' || initcap(substr(md5((i * 7)::text), 1, 9)),
       '$argon2id$v=19$m=65536,t=3,p=4$' || encode(gen_random_bytes(16), 'base64') || '$' || encode(gen_random_bytes(32), 'base64'),
       jsonb_build_object('theme', (ARRAY['light', 'dark'])[1 + (i % 2)], 'locale', (ARRAY['en', 'de', 'fr', 'es'])[1 + (i % 4)],
                          'notifications', i % 3 <> 0),
       now() - (random() * interval '700 days'),
       CASE WHEN i % 5 = 0 THEN NULL ELSE now() - (random() * interval '30 days') END
FROM generate_series(1, 20000) AS i
JOIN org_ids o ON o.n = 1 + (i % 500);

CREATE TEMP TABLE user_ids AS SELECT row_number() OVER () AS n, id FROM users;
CREATE INDEX ON user_ids (n);

INSERT INTO refresh_tokens (user_id, token_hash, user_agent, expires_at, revoked)
SELECT u.id, encode(digest(gen_random_bytes(32), 'sha256'), 'hex'),
       (ARRAY['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (Macintosh)', 'okhttp/4.12', 'curl/8.5'])[1 + (g % 4)],
       now() + (random() * interval '30 days'), random() < 0.1
FROM users u CROSS JOIN generate_series(1, 2) AS g;

INSERT INTO security_events (user_id, kind, ip, details, occurred_at)
SELECT u.id,
       (ARRAY['login', 'login_failed', 'password_reset', 'mfa_enabled', 'token_revoked'])[1 + (i % 5)],
       ('10.' || (i % 250) || '.' || (i % 199) || '.' || (i % 97))::inet,
       jsonb_build_object('request_id', gen_random_uuid(), 'country', (ARRAY['DE', 'US', 'FR', 'BR', 'IN'])[1 + (i % 5)],
                          'risk', round(random()::numeric, 3)),
       now() - (random() * interval '90 days')
FROM generate_series(1, 30000) AS i
JOIN user_ids u ON u.n = 1 + (i % 20000);

INSERT INTO orders (user_id, total_cents, currency, items, created_at)
SELECT u.id,
       (random() * 50000)::int, (ARRAY['EUR', 'USD'])[1 + (i % 2)],
       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (i % 977), 'qty', 1 + (i % 4))),
       now() - (random() * interval '365 days')
FROM generate_series(1, 15000) AS i
JOIN user_ids u ON u.n = 1 + (i % 20000);

INSERT INTO audit_log (actor, action, payload, created_at)
SELECT 'user' || (i % 20000) || '@example.com',
       (ARRAY['settings.update', 'org.invite', 'billing.update', 'api_key.create'])[1 + (i % 4)],
       jsonb_build_object('change', md5(i::text)),
       now() - (random() * interval '180 days')
FROM generate_series(1, 10000) AS i;

ANALYZE;
