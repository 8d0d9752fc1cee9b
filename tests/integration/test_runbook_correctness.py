"""What the runbooks do that the collection used to get wrong (issue "runbook correctness"): each test runs the
runbook's own case against the real thing - PostgreSQL, the sandbox's compose stack, the roles' playbooks."""

import json
import os
import subprocess

import pytest

from conftest import ROOT, exact_counts, failures, local_inventory, run_module, run_playbook, running_stack, task_results

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


@pytest.fixture(scope="module")
def strict_stack(tmp_path_factory):
    """The sandbox's stack with an API that is not ready while the database holds migrations it does not know."""
    with running_stack(tmp_path_factory.mktemp("strict"), SANDBOX_STRICT_SCHEMA="1") as stack:
        yield stack


def test_a_rollback_with_the_database_restores_before_the_old_release_starts(strict_stack, tmp_path):
    from test_deploy_roles import host_vars  # pylint: disable=import-outside-toplevel

    stack = strict_stack
    variables = host_vars(stack, tmp_path)
    ready = [dict(name="ready", type="http", url=stack.url + "/health/ready")]
    variables.update(rollback_health_checks=ready, rollback_health_timeout=20)
    # the old release is not ready on the new schema: the migration's own readiness check would say so
    variables["deploy_migrate_health_checks"] = []
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"children": {"app": {"hosts": {"app1": variables}}}}}))
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), str(path),
                                 dict(deploy_version="1.1.0", deploy_migrate=True))
    assert rc == 0, failures(out)
    assert stack.version() == "1.1.0"
    # 1.0.0 does not start on 1.1.0's schema: the database must go back first
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "rollback.yml"), str(path),
                                 dict(rollback_restore_database=True, rollback_confirm="app"))
    assert rc == 0, failures(out)
    assert stack.version() == "1.0.0" and stack.env_version() == "1.0.0"
    assert stack.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'timezone'")[0][0] == "0"


def test_a_degraded_verdict_is_a_warning_and_fails_the_role_when_asked(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    checks = [dict(name="cache", type="tcp", host="127.0.0.1", port=9, severity="warning", timeout=1),
              dict(name="disk", type="disk", path="/", warning_percent=99, critical_percent=100)]
    variables = dict(health_checks=checks, report_ledger_path=str(ledger))
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "health.yml"), local_inventory(tmp_path), variables)
    assert rc == 0
    assert [json.loads(line)["result"] for line in ledger.read_text().splitlines()] == ["warning"]
    assert task_results(out, "Probe the stack")["status"] == "degraded"
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "health.yml"), local_inventory(tmp_path),
                                 dict(variables, health_fail_on=["degraded"]))
    assert rc != 0
    assert "cache" in task_results(out, "Fail when the stack is not healthy enough")["msg"]


def env_file_value(path, variable):
    return [line.split("=", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith(variable + "=")][-1]


def test_a_key_that_encrypts_data_is_only_rotated_with_reencryption_or_an_acknowledgement(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ENCRYPTION_KEY=first-encryption-key-0123456789abcdef\n")
    args = dict(name="encryption_key", state_dir=str(tmp_path / "state"),
                env_files=[dict(path=str(env_file), variable="ENCRYPTION_KEY")])
    refused = run_module("secret_rotate", args)
    assert refused["failed"] and "encrypts data at rest" in refused["msg"] and "Nothing was changed" in refused["msg"]
    assert "reencrypt_command" in refused["msg"] and "accept_unreadable_data" in refused["msg"]
    assert env_file_value(env_file, "ENCRYPTION_KEY") == "first-encryption-key-0123456789abcdef"

    # the re-encryption step gets both values in its environment, never in argv
    seen = tmp_path / "reencrypted"
    script = "printf '%s %s' \"$STACKOPS_OLD_SECRET\" \"$STACKOPS_NEW_SECRET\" > " + str(seen)
    rotated = run_module("secret_rotate", dict(args, reencrypt_command=["sh", "-c", script]))
    assert rotated.get("failed") is not True and rotated["rotated"], rotated["msg"]
    new = env_file_value(env_file, "ENCRYPTION_KEY")
    assert seen.read_text() == "first-encryption-key-0123456789abcdef " + new

    # a failing re-encryption reverts the rotation
    failed = run_module("secret_rotate", dict(args, reencrypt_command=["false"], min_age="0"))
    assert failed["failed"] and failed["reverted"] is True and "reencrypt_command failed" in failed["msg"]
    assert env_file_value(env_file, "ENCRYPTION_KEY") == new

    acknowledged = run_module("secret_rotate", dict(args, accept_unreadable_data=True))
    assert acknowledged.get("failed") is not True and acknowledged["rotated"], acknowledged["msg"]


def test_an_emergency_rotation_rotates_what_min_age_would_skip(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SESSION_SECRET=first-session-secret-0123456789abcdef\n")
    host = dict(ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
                rotate_secrets_state_dir=str(tmp_path / "state"), report_ledger_path=str(tmp_path / "ledger.jsonl"),
                rotate_secrets_list=[dict(name="session_secret",
                                          env_files=[dict(path=str(env_file), variable="SESSION_SECRET")])])
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"children": {"db": {"hosts": {"db1": host}}}}}))
    playbook = os.path.join(PLAYBOOKS, "rotate_secrets.yml")
    assert run_playbook(playbook, str(inventory), {})[0] == 0
    first = env_file_value(env_file, "SESSION_SECRET")
    assert run_playbook(playbook, str(inventory), {})[0] == 0
    assert env_file_value(env_file, "SESSION_SECRET") == first  # rotated within min_age: skipped
    assert run_playbook(playbook, str(inventory), dict(rotate_secrets_force=True))[0] == 0
    assert env_file_value(env_file, "SESSION_SECRET") != first


def test_the_runbooks_idle_sessions_are_one_variable_away(host_pg, tmp_path):
    # a console left open by a person (not a superuser: those are never ended)
    host_pg.psql("postgres", "DROP ROLE IF EXISTS console_user; CREATE ROLE console_user LOGIN PASSWORD 'console-pw'")
    idle = subprocess.Popen(["psql", "-X", "-q", "-d", "app"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=dict(host_pg.env(), PGAPPNAME="forgotten-console", PGUSER="console_user",
                                     PGPASSWORD="console-pw"), text=True)
    idle.stdin.write("SELECT 1;\n")
    idle.stdin.flush()
    idle.stdout.readline()
    try:
        count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forgotten-console'"
        inventory = tmp_path / "hosts.json"
        inventory.write_text(json.dumps({"all": {"children": {"db": {"hosts": {"db1": dict(
            ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
            stackops_connection=dict(login_host="127.0.0.1", login_port=host_pg.port,
                                     login_password=host_pg.password))}}}}}))
        playbook = os.path.join(PLAYBOOKS, "terminate_idle_sessions.yml")
        import time  # pylint: disable=import-outside-toplevel
        time.sleep(2)
        assert run_playbook(playbook, str(inventory), dict(idle_older_than="1s"))[0] == 0
        assert host_pg.psql("postgres", count) == "1"  # plain idle is left alone by default
        assert run_playbook(playbook, str(inventory), dict(idle_older_than="1s", idle_include_idle=True))[0] == 0
        assert host_pg.psql("postgres", count) == "0"
    finally:
        idle.kill()


def test_globals_are_restored_before_the_database_and_existing_roles_are_left_alone(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS owned_app")
    host_pg.psql("postgres", "DROP ROLE IF EXISTS report_owner; DROP ROLE IF EXISTS kept_role")
    host_pg.psql("postgres", "CREATE ROLE report_owner LOGIN PASSWORD 'owner-pw'; "
                             "CREATE ROLE kept_role LOGIN PASSWORD 'password-in-the-backup'")
    host_pg.psql("postgres", "CREATE DATABASE owned_app OWNER report_owner")
    host_pg.psql("owned_app", "CREATE TABLE reports (id int); ALTER TABLE reports OWNER TO report_owner; "
                              "GRANT SELECT ON reports TO kept_role")
    for args in (dict(globals_only=True), dict(database="owned_app")):
        made = run_module("pg_backup", dict(host_pg.connection(), dest=dest, **args))
        assert not made.get("failed"), made.get("msg")
    # the disaster: the database and one role are gone; another role's password changed since the backup
    host_pg.psql("postgres", "DROP DATABASE owned_app")
    host_pg.psql("postgres", "REVOKE ALL ON DATABASE postgres FROM report_owner; DROP ROLE report_owner")
    host_pg.psql("postgres", "ALTER ROLE kept_role PASSWORD 'password-set-since'")

    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="owned_app",
                                           target_database="owned_app", restore_globals=True))
    assert not result.get("failed"), result.get("msg")
    assert "report_owner" in result["globals"]["created_roles"]
    assert {"kept_role", "postgres"} <= set(result["globals"]["skipped_roles"])
    assert host_pg.psql("owned_app", "SELECT tableowner FROM pg_tables WHERE tablename = 'reports'") == "report_owner"
    assert host_pg.psql("owned_app", "SELECT has_table_privilege('kept_role', 'reports', 'SELECT')") == "t"
    logins = subprocess.run(["psql", "-X", "-At", "-d", "postgres", "-c", "SELECT current_user"], capture_output=True,
                            text=True, env=dict(host_pg.env(), PGUSER="kept_role", PGPASSWORD="password-set-since"),
                            check=False)
    assert logins.stdout.strip() == "kept_role", logins.stderr  # not altered back to the backup's password
    assert run_module("health_probe", dict(checks=[dict(name="db", type="postgres", **host_pg.connection())]))[
        "status"] == "healthy"  # the connecting superuser's password is untouched


def test_a_drill_runs_on_the_backup_s_major_restores_roles_and_says_who_ran_it(host_pg, tmp_path):
    from conftest import postgres_image  # pylint: disable=import-outside-toplevel

    dest = str(tmp_path / "backups")
    for args in (dict(globals_only=True), dict(database="app")):
        assert not run_module("pg_backup", dict(host_pg.connection(), dest=dest, **args)).get("failed")
    image = postgres_image().rsplit(":", 1)[0] + ":{major}"
    result = run_module("restore_drill", dict(path=dest, database="app", drill_image=image,
                                              log_dir=str(tmp_path / "logs"), performed_by="Alice (on call)",
                                              restore_globals=True,
                                              compare_source=dict(host_pg.connection(), database="app")))
    assert not result.get("failed"), result.get("msg")
    assert result["passed"]
    with open(result["log_path"]) as fh:
        log = fh.read()
    assert "| Performed by | Alice (on call) |" in log
    assert "| Roles restored first | globals_" in log
    assert "Source now" in log  # compared with the live database
    with open(result["json_log_path"]) as fh:
        assert json.load(fh)["image"] == image.replace("{major}", "15")


def test_a_failed_migration_restored_on_failure_had_its_writers_stopped_and_the_tool_told(tmp_path):
    from test_deploy_roles import host_vars  # pylint: disable=import-outside-toplevel

    with running_stack(tmp_path / "stack") as stack:
        variables = host_vars(stack, tmp_path)
        variables["migrate_rollback_command"] = [
            "sh", "-c", "echo rolled-back > /srv/uploads/migration-rolled-back"]
        path = tmp_path / "hosts.json"
        path.write_text(json.dumps({"all": {"children": {"app": {"hosts": {"app1": variables}}}}}))
        (api,) = stack.api_containers()
        started = subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", api], capture_output=True,
                                 text=True, check=True).stdout
        rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), str(path),
                                     dict(deploy_version="1.4.0-bad-migration", deploy_migrate=True))
        assert rc != 0
        stopped = task_results(out, "Stop the services that write for the migration window", host="app1")
        assert stopped["cmd"][-1:] == ["api"], stopped["cmd"]
        message = task_results(out, "Stop here, the deploy failed", host="app1")["msg"]
        assert "The migration tool was told of the rollback" in message and "done" in message, message
        marker = subprocess.run(["docker", "exec", api, "cat", "/srv/uploads/migration-rolled-back"],
                                capture_output=True, text=True, check=False)
        assert marker.stdout.strip() == "rolled-back"
        again = subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", api], capture_output=True,
                               text=True, check=True).stdout
        assert again != started and stack.version() == "1.0.0"  # stopped for the window, serving again


@pytest.fixture
def runbook_dumps(host_pg, tmp_path):
    """The files the runbooks' cron jobs leave: pg_dump | gzip, pg_dump -Fc, pg_dumpall."""
    folder = tmp_path / "old-backups"
    folder.mkdir()
    env = host_pg.env()
    with open(folder / "app_2026-11-20.sql.gz", "wb") as out:
        dump = subprocess.Popen(["pg_dump", "-d", "app"], stdout=subprocess.PIPE, env=env)
        subprocess.run(["gzip"], stdin=dump.stdout, stdout=out, check=True)
        assert dump.wait() == 0
    subprocess.run(["pg_dump", "-Fc", "-d", "app", "-f", str(folder / "app_2026-11-21.dump")], env=env, check=True)
    subprocess.run(["pg_dumpall", "-f", str(folder / "cluster_2026-11-21.sql")], env=env, check=True)
    os.utime(folder / "app_2026-11-20.sql.gz", (1763607600, 1763607600))  # 2025-11-20T03:00:00Z
    return folder


def test_the_runbooks_own_dumps_are_read_restored_drilled_and_imported(host_pg, tmp_path, runbook_dumps):
    from conftest import postgres_image  # pylint: disable=import-outside-toplevel

    names = ("app_2026-11-20.sql.gz", "app_2026-11-21.dump", "cluster_2026-11-21.sql")
    gz, custom, cluster = (str(runbook_dumps / n) for n in names)
    info = run_module("backup_info", dict(path=gz, verify=True))
    assert not info.get("failed"), info.get("msg")
    assert info["backups"][0]["made_by"] == "another tool" and info["backups"][0]["compression"] == "gzip"
    assert info["verified"][0]["method"].startswith("sha256+decompress")

    host_pg.psql("postgres", "DROP DATABASE IF EXISTS from_cron")
    restored = run_module("pg_restore", dict(host_pg.connection(), backup=gz, target_database="from_cron"))
    assert not restored.get("failed"), restored.get("msg")
    assert restored["row_counts_checked"] is False
    assert exact_counts(host_pg.psql, "from_cron") == exact_counts(host_pg.psql, "app")
    refused = run_module("pg_restore", dict(host_pg.connection(), backup=cluster, target_database="from_cron",
                                            confirm="from_cron"))
    assert refused["failed"] and "cluster dump (pg_dumpall)" in refused["msg"]

    drill = run_module("restore_drill", dict(backup=custom, database="app", drill_image=postgres_image(),
                                             log_dir=str(tmp_path / "logs"),
                                             compare_source=dict(host_pg.connection(), database="app")))
    assert not drill.get("failed"), drill.get("msg")
    with open(drill["log_path"]) as fh:
        assert "| Graded against | the live source's tables and row counts |" in fh.read()

    dest = str(tmp_path / "backups")
    for path, database in ((gz, "app"), (custom, "app"), (cluster, None)):
        imported = run_module("backup_import", dict(src=path, dest=dest, database=database))
        assert not imported.get("failed"), imported.get("msg")
        assert imported["changed"] and os.path.exists(imported["path"])
    assert run_module("backup_import", dict(src=gz, dest=dest, database="app"))["changed"] is False
    listed = run_module("backup_info", dict(path=dest, verify=True, verify_scope="all"))
    assert sorted(listed["latest"]) == ["all_databases", "app"] and len(listed["verified"]) == 3
    assert listed["latest"]["app"]["name"].startswith("app_") and listed["latest"]["app"]["format"] == "custom"
    assert any(b["name"] == "app_20251120T030000Z" for b in listed["backups"])
    drilled = run_module("restore_drill", dict(path=dest, database="app", drill_image=postgres_image(),
                                               log_dir=str(tmp_path / "logs")))
    assert not drilled.get("failed") and drilled["passed"], drilled.get("msg")


def test_a_restored_database_keeps_its_owner(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS owned_db")
    host_pg.psql("postgres", "DROP ROLE IF EXISTS db_owner")
    host_pg.psql("postgres", "CREATE ROLE db_owner")
    host_pg.psql("postgres", "CREATE DATABASE owned_db OWNER db_owner")
    host_pg.psql("owned_db", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    made = run_module("pg_backup", dict(host_pg.connection(), database="owned_db", dest=dest))
    assert made["manifest"]["database_owner"] == "db_owner"
    owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'owned_db'"
    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="owned_db",
                                           target_database="owned_db", confirm="owned_db"))
    assert not result.get("failed"), result.get("msg")
    assert host_pg.psql("postgres", owner) == "db_owner" and result["owner"] == "db_owner"
    host_pg.psql("postgres", "DROP DATABASE owned_db")  # a new server: the owner comes from the manifest
    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="owned_db",
                                           target_database="owned_db"))
    assert not result.get("failed"), result.get("msg")
    assert host_pg.psql("postgres", owner) == "db_owner"


def test_a_schema_only_backup_is_kept_apart_from_the_full_ones(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    full = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, keep_last=1))
    schema = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, content="schema",
                                          keep_last=1, format="plain"))
    assert not schema.get("failed"), schema.get("msg")
    assert schema["manifest"]["name"].startswith("app.schema_") and schema["manifest"]["content"] == "schema"
    assert os.path.exists(full["path"])  # its own retention: the full backup stays
    info = run_module("backup_info", dict(path=dest))
    assert info["latest"]["app"]["name"] == full["manifest"]["name"]
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS schema_only")
    restored = run_module("pg_restore", dict(host_pg.connection(), backup=schema["path"],
                                             target_database="schema_only"))
    assert not restored.get("failed"), restored.get("msg")
    counts = exact_counts(host_pg.psql, "schema_only")
    assert sorted(counts) == sorted(full["manifest"]["row_counts"]) and set(counts.values()) == {0}
