"""migration_guard's rules: for each, a dangerous migration that is flagged and a safe variant that is not;
the statement splitter; acknowledgements."""

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils._migration_rules import lint, split_statements

TIMEOUT = "SET lock_timeout = '5s';\n"

CASES = [
    ("drop-table", "DROP TABLE legacy_sessions;", "CREATE TABLE audit_archive (id bigint);"),
    ("drop-column", "ALTER TABLE users DROP COLUMN legacy_flag;",
     "ALTER TABLE users ALTER COLUMN nickname DROP DEFAULT;"),
    ("drop-column", "ALTER TABLE users DROP IF EXISTS legacy_flag;", "ALTER TABLE users DROP CONSTRAINT users_x_check;"),
    ("not-null-without-default", "ALTER TABLE users ADD COLUMN plan text NOT NULL;",
     "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';"),
    ("set-not-null", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
     "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;"),
    ("column-type-change", "ALTER TABLE orders ALTER COLUMN total_cents TYPE bigint;",
     "ALTER TABLE orders ADD COLUMN total_cents_big bigint;"),
    ("rename", "ALTER TABLE users RENAME COLUMN name TO full_name;", "ALTER TABLE users ADD COLUMN full_name text;"),
    ("rename", "ALTER TABLE users RENAME TO accounts;", "CREATE VIEW accounts AS SELECT * FROM users;"),
    ("create-index-without-concurrently", "CREATE INDEX users_email_idx ON users (email);",
     "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"),
    ("drop-index-without-concurrently", "DROP INDEX users_email_idx;", "DROP INDEX CONCURRENTLY users_email_idx;"),
    ("constraint-without-not-valid",
     "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);",
     "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"),
    ("unique-constraint-without-index", "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
     "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;"),
    ("concurrently-in-transaction", "BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (email);\nCOMMIT;",
     "CREATE INDEX CONCURRENTLY i ON users (email);"),
]


@pytest.mark.parametrize("rule,dangerous,safe", CASES, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CASES)])
def test_each_rule_flags_the_dangerous_variant_and_not_the_safe_one(rule, dangerous, safe):
    flagged = lint(TIMEOUT + dangerous, "m.sql")
    assert rule in [f["rule"] for f in flagged]
    finding = next(f for f in flagged if f["rule"] == rule)
    assert finding["file"] == "m.sql" and finding["line"] >= 2 and finding["fix"]
    assert rule not in [f["rule"] for f in lint(TIMEOUT + safe)]


def test_ddl_without_a_lock_timeout_is_flagged_once():
    findings = lint("ALTER TABLE users ADD COLUMN a int;\nALTER TABLE users ADD COLUMN b int;")
    assert [f["rule"] for f in findings] == ["missing-lock-timeout"] and findings[0]["severity"] == "warning"
    assert lint(TIMEOUT + "ALTER TABLE users ADD COLUMN a int;") == []


def test_changes_to_a_table_created_in_the_same_migration_are_fine():
    sql = TIMEOUT + """CREATE TABLE invoices (id bigserial PRIMARY KEY, user_id bigint NOT NULL);
    CREATE INDEX invoices_user_idx ON invoices (user_id);
    ALTER TABLE invoices ADD CONSTRAINT invoices_user_fk FOREIGN KEY (user_id) REFERENCES users (id);"""
    assert lint(sql) == []


def test_a_comment_acknowledges_a_finding():
    sql = TIMEOUT + "-- migration_guard: ignore drop-column (unused since 1.4)\nALTER TABLE users DROP COLUMN legacy;"
    (finding,) = lint(sql)
    assert finding["rule"] == "drop-column" and finding["acknowledged"]


def test_the_splitter_respects_quotes_dollar_quotes_and_comments_and_keeps_lines():
    sql = ("-- first; not a statement\nINSERT INTO t VALUES ('a;b', 'it''s');\n"
           "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
           "/* DROP TABLE x; */\n\nDROP TABLE y")
    statements = split_statements(sql)
    assert [s.line for s in statements] == [2, 3, 6]
    assert statements[0].flat == "INSERT INTO t VALUES ('a;b', 'it''s')"
    assert "SELECT 1; " in statements[1].flat
    assert [f["rule"] for f in lint(sql)] == ["missing-lock-timeout", "drop-table"]
