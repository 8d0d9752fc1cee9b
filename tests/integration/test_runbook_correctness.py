"""What the runbooks do that the collection used to get wrong (issue "runbook correctness"): each test runs the
runbook's own case against the real thing - PostgreSQL, the sandbox's compose stack, the roles' playbooks."""

import json
import os
import subprocess

import pytest

from conftest import ROOT, exact_counts, local_inventory, run_module, run_playbook, running_stack, task_results

PLAYBOOKS = os.path.join(ROOT, "playbooks")


@pytest.fixture
def app_copy(host_pg, tmp_path):
    """A backup of the sample database and a copy of it restored as ``app_copy``."""
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    assert not made.get("failed"), made.get("msg")
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS app_copy")
    restored = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                             target_database="app_copy"))
    assert not restored.get("failed"), restored.get("msg")
    return dest, made


def orphans(pg, database):
    """Rows of the sample's tables whose foreign key points at a missing user."""
    return pg.psql(database, "SELECT (SELECT count(*) FROM refresh_tokens t WHERE NOT EXISTS (SELECT 1 FROM users u "
                             "WHERE u.id = t.user_id)) + (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 "
                             "FROM users u WHERE u.id = o.user_id))")


def test_a_table_others_reference_is_restored_without_touching_them(host_pg, app_copy):
    dest, made = app_copy
    host_pg.psql("app_copy", "UPDATE users SET display_name = 'overwritten' WHERE email LIKE 'user1%'")
    host_pg.psql("app_copy", "INSERT INTO users (email, display_name, password_hash, created_at) "
                             "VALUES ('new@example.com', 'new', 'x', now())")
    before = exact_counts(host_pg.psql, "app_copy")
    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                           target_database="app_copy", confirm="app_copy", tables=["users"]))
    assert not result.get("failed"), result.get("msg")
    after = exact_counts(host_pg.psql, "app_copy")
    assert after["public.users"] == made["manifest"]["row_counts"]["public.users"]
    assert {t: n for t, n in after.items() if t != "public.users"} == \
        {t: n for t, n in before.items() if t != "public.users"}
    assert host_pg.psql("app_copy", "SELECT count(*) FROM users WHERE display_name = 'overwritten'") == "0"
    assert orphans(host_pg, "app_copy") == "0"
    # the foreign keys are still there and valid
    assert host_pg.psql("app_copy", "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated "
                                    "AND confrelid = 'users'::regclass") == "3"


def test_a_table_restore_that_would_orphan_referencing_rows_fails_and_changes_nothing(host_pg, app_copy):
    dest, _made = app_copy
    host_pg.psql("app_copy", "WITH u AS (INSERT INTO users (email, display_name, password_hash, created_at) VALUES "
                             "('buyer@example.com', 'buyer', 'x', now()) RETURNING id) INSERT INTO orders (user_id, "
                             "total_cents, currency, items, created_at) SELECT id, 100, 'EUR', '[]', now() FROM u")
    before = exact_counts(host_pg.psql, "app_copy")
    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                           target_database="app_copy", confirm="app_copy", tables=["public.users"]))
    assert result["failed"]
    assert "1 row(s) of orders would reference rows of users" in result["msg"] and "not changed" in result["msg"]
    assert exact_counts(host_pg.psql, "app_copy") == before
    assert host_pg.psql("app_copy", "SELECT count(*) FROM users WHERE email = 'buyer@example.com'") == "1"
    assert host_pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'app_copy__%'") == "0"


def test_the_disk_check_reports_what_df_reports(tmp_path):
    result = run_module("health_probe", dict(checks=[dict(name="root", type="disk", path="/", warning_percent=99,
                                                          critical_percent=100)]))
    measured = result["checks"][0]["details"]["used_percent"]
    df = subprocess.run(["df", "--output=pcent", "/"], capture_output=True, text=True, check=True).stdout
    said = int(df.split()[-1].rstrip("%"))
    # df rounds up to a whole percent
    assert said - 1 <= measured <= said, (measured, said)
