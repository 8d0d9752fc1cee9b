"""secret_rotate on a copy of the sandbox's stack: the API logs in to PostgreSQL as its own role with the password
from the project's .env and refuses a session secret shorter than 16 characters. Rotations end to end, a failure
at each step reverting to the previous value, interrupted rotations completed by the next run, mirroring to
Secrets Manager and SSM on moto's server, and no value in any output, ledger or server log."""

import json
import os
import subprocess
import urllib.error
import urllib.request

import boto3
import pytest

from conftest import ROOT, run_module, run_playbook, running_stack

INITIAL = "initial-app-password-0001"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("secrets")) as stack:
        stack.psql("CREATE ROLE app_user LOGIN PASSWORD '%s'" % INITIAL)
        stack.psql("ALTER SYSTEM SET log_statement = 'all'")
        stack.psql("SELECT pg_reload_conf()")
        with open(stack.env_file, "a") as fh:
            fh.write("SANDBOX_APP_DB_USER=app_user\nSANDBOX_APP_DB_PASSWORD=%s\n"
                     "SANDBOX_SESSION_SECRET=first-session-secret-abcdefgh\n" % INITIAL)
        assert stack.compose("up", "-d", "--no-deps", "api").returncode == 0
        assert ready(stack, wait=60)
        yield stack


def ready(stack, wait=0):
    import time
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(stack.url + "/health/ready", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)


def env_value(stack, variable):
    with open(stack.env_file) as fh:
        return [line.split("=", 1)[1].strip() for line in fh if line.startswith(variable + "=")][-1]


def logs_in(stack, password, user="app_user"):
    """A login over the container's network address, as the app makes it (loopback is trusted in the image)."""
    proc = subprocess.run(["docker", "exec", "-e", "PGPASSWORD=" + password, stack.postgres, "sh", "-c",
                           'psql -h "$(hostname -i)" -U %s -d app -AtXc "SELECT 1"' % user],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0


def db_rotation(stack, tmp_path, **extra):
    args = dict(name="app_db_password", state_dir=str(tmp_path / "state"), postgres_role="app_user",
                container=stack.postgres, env_files=[dict(path=stack.env_file, variable="SANDBOX_APP_DB_PASSWORD")],
                project_src=stack.dir, project_name=stack.name, restart_services=["api"], health_timeout=60,
                health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")])
    args.update(extra)
    return args


def session_rotation(stack, tmp_path, **extra):
    args = dict(name="session_secret", state_dir=str(tmp_path / "state"),
                env_files=[dict(path=stack.env_file, variable="SANDBOX_SESSION_SECRET")],
                project_src=stack.dir, project_name=stack.name, restart_services=["api"], health_timeout=20,
                health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")])
    args.update(extra)
    return args


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    from conftest import S3Server
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


def store(tmp_path, name, stage):
    path = tmp_path / "state" / name / stage
    return path.read_text() if path.exists() else None


def test_rotating_the_database_password_end_to_end_mirrored_to_secrets_manager(stack, tmp_path, aws):
    old = env_value(stack, "SANDBOX_APP_DB_PASSWORD")
    mirror = dict(service="secretsmanager", name="sandbox/app-db-password", endpoint_url=aws.endpoint,
                  access_key=aws.access_key, secret_key=aws.secret_key)
    result = run_module("secret_rotate", db_rotation(stack, tmp_path, mirror=mirror))
    assert result.get("failed") is not True, result["msg"]
    assert result["rotated"] and result["steps_done"] == ["create", "set", "test", "finish"]
    new = env_value(stack, "SANDBOX_APP_DB_PASSWORD")
    assert new != old and len(new) == 32 and store(tmp_path, "app_db_password", "current") == new
    assert store(tmp_path, "app_db_password", "previous") == old
    assert store(tmp_path, "app_db_password", "pending") is None
    assert (tmp_path / "state" / "app_db_password" / "current").stat().st_mode & 0o777 == 0o600
    assert logs_in(stack, new) and not logs_in(stack, old)
    assert ready(stack)
    assert result["fingerprints"]["current"] != result["fingerprints"]["previous"]
    assert new not in json.dumps(result) and old not in json.dumps(result)
    client = boto3.client("secretsmanager", endpoint_url=aws.endpoint, region_name="us-east-1",
                          aws_access_key_id=aws.access_key, aws_secret_access_key=aws.secret_key)
    assert client.get_secret_value(SecretId="sandbox/app-db-password")["SecretString"] == new
    # the server's statement log (log_statement=all) saw the SCRAM verifier, never a password
    server_log = subprocess.run(["docker", "logs", stack.postgres], capture_output=True, text=True, check=True).stderr
    assert "ALTER ROLE \"app_user\" PASSWORD 'SCRAM-SHA-256$4096:" in server_log
    assert new not in server_log and old not in server_log


def test_an_app_that_refuses_the_new_secret_gets_the_previous_one_back(stack, tmp_path):
    old = env_value(stack, "SANDBOX_SESSION_SECRET")
    result = run_module("secret_rotate", session_rotation(stack, tmp_path, value="too-short"))
    assert result["failed"] and result["reverted"] is True, result["msg"]
    assert "Reverted" in result["msg"] and "too-short" not in json.dumps(result)
    assert env_value(stack, "SANDBOX_SESSION_SECRET") == old and ready(stack)
    assert store(tmp_path, "session_secret", "pending") is None
    again = run_module("secret_rotate", session_rotation(stack, tmp_path))
    assert again.get("failed") is not True and again["rotated"], again["msg"]
    assert env_value(stack, "SANDBOX_SESSION_SECRET") not in (old, "too-short") and ready(stack)


def test_a_database_that_rejects_the_alter_keeps_the_previous_password(stack, tmp_path):
    stack.psql("CREATE ROLE weak_admin LOGIN")
    current = env_value(stack, "SANDBOX_APP_DB_PASSWORD")
    # the rotation's admin session is a role without CREATEROLE: PostgreSQL rejects its ALTER ROLE
    args = db_rotation(stack, tmp_path, current_value=current, login_user="weak_admin")
    result = run_module("secret_rotate", args)
    assert result["failed"] and result["reverted"] is True, result["msg"]
    assert "permission denied" in result["msg"] or "must have" in result["msg"], result["msg"]
    assert env_value(stack, "SANDBOX_APP_DB_PASSWORD") == current and logs_in(stack, current) and ready(stack)
    done = run_module("secret_rotate", db_rotation(stack, tmp_path, current_value=current))
    assert done.get("failed") is not True and done["rotated"], done["msg"]
    assert logs_in(stack, env_value(stack, "SANDBOX_APP_DB_PASSWORD")) and not logs_in(stack, current)


@pytest.mark.parametrize("interrupted_after", [["create"], ["create", "set"], ["create", "set", "test"]])
def test_an_interrupted_rotation_is_completed_by_the_next_run(stack, tmp_path, interrupted_after):
    current = env_value(stack, "SANDBOX_APP_DB_PASSWORD")
    first = run_module("secret_rotate", db_rotation(stack, tmp_path, current_value=current, steps=interrupted_after))
    assert first.get("failed") is not True and first["rotated"] is False, first["msg"]
    pending = store(tmp_path, "app_db_password", "pending")
    assert pending and pending != current
    if "set" in interrupted_after:
        assert logs_in(stack, pending) and env_value(stack, "SANDBOX_APP_DB_PASSWORD") == pending
    else:
        assert logs_in(stack, current) and env_value(stack, "SANDBOX_APP_DB_PASSWORD") == current
    second = run_module("secret_rotate", db_rotation(stack, tmp_path))
    assert second.get("failed") is not True and second["rotated"], second["msg"]
    assert "create (resumed)" in second["steps_done"]
    assert store(tmp_path, "app_db_password", "current") == pending == env_value(stack, "SANDBOX_APP_DB_PASSWORD")
    assert logs_in(stack, pending) and not logs_in(stack, current) and ready(stack)


def test_ssm_mirror_and_check_mode(stack, tmp_path, aws):
    before = env_value(stack, "SANDBOX_SESSION_SECRET")
    mirror = dict(service="ssm", name="/sandbox/session-secret", endpoint_url=aws.endpoint,
                  access_key=aws.access_key, secret_key=aws.secret_key)
    preview = run_module("secret_rotate", session_rotation(stack, tmp_path, mirror=mirror), check_mode=True)
    assert preview["changed"] and "would rotate session_secret" in preview["msg"]
    assert env_value(stack, "SANDBOX_SESSION_SECRET") == before and not (tmp_path / "state").exists()
    result = run_module("secret_rotate", session_rotation(stack, tmp_path, mirror=mirror, min_age="80d"))
    assert result.get("failed") is not True and result["rotated"], result["msg"]
    client = boto3.client("ssm", endpoint_url=aws.endpoint, region_name="us-east-1",
                          aws_access_key_id=aws.access_key, aws_secret_access_key=aws.secret_key)
    value = client.get_parameter(Name="/sandbox/session-secret", WithDecryption=True)["Parameter"]["Value"]
    assert value == env_value(stack, "SANDBOX_SESSION_SECRET") != before
    skipped = run_module("secret_rotate", session_rotation(stack, tmp_path, mirror=mirror, min_age="80d"))
    assert skipped["changed"] is False and "less than 80d ago" in skipped["msg"]


def test_no_value_appears_in_the_play_output_at_vvv(stack, tmp_path):
    playbook = tmp_path / "rotate.yml"
    args = db_rotation(stack, tmp_path, current_value=env_value(stack, "SANDBOX_APP_DB_PASSWORD"))
    playbook.write_text(json.dumps([dict(hosts="all", gather_facts=False, tasks=[
        {"name": "Rotate", "stackops.runbook.secret_rotate": args}])]))
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"db1": {
        "ansible_connection": "local", "ansible_python_interpreter": os.path.join(ROOT, ".venv", "bin", "python")}}}}))
    old = env_value(stack, "SANDBOX_APP_DB_PASSWORD")
    rc, out, err = run_playbook(str(playbook), str(inventory), {}, verbosity=3, callback="ansible.builtin.default")
    assert rc == 0, out[-3000:]
    new = env_value(stack, "SANDBOX_APP_DB_PASSWORD")
    assert new != old
    for value in (old, new):
        assert value not in out and value not in err


def test_the_role_rotates_every_secret_once_and_records_no_value(stack, tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    host = dict(
        ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
        rotate_secrets_state_dir=str(tmp_path / "state"), report_ledger_path=str(ledger), report_metrics_dir="",
        rotate_secrets_defaults=dict(project_src=stack.dir, project_name=stack.name, restart_services=["api"],
                                     health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")]),
        rotate_secrets_list=[
            dict(name="app_db_password", postgres_role="app_user", container=stack.postgres,
                 env_files=[dict(path=stack.env_file, variable="SANDBOX_APP_DB_PASSWORD")]),
            dict(name="session_secret", env_files=[dict(path=stack.env_file, variable="SANDBOX_SESSION_SECRET")])])
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"children": {"db": {"hosts": {"db1": host}}}}}))
    before = [env_value(stack, v) for v in ("SANDBOX_APP_DB_PASSWORD", "SANDBOX_SESSION_SECRET")]
    rc, out, err = run_playbook(os.path.join(ROOT, "playbooks", "rotate_secrets.yml"), str(inventory), {},
                                verbosity=3, callback="ansible.builtin.default")
    assert rc == 0, out[-3000:]
    after = [env_value(stack, v) for v in ("SANDBOX_APP_DB_PASSWORD", "SANDBOX_SESSION_SECRET")]
    assert all(a != b for a, b in zip(after, before)) and ready(stack)
    recorded = ledger.read_text()
    for value in before + after:
        assert value not in out and value not in err and value not in recorded
    entry = json.loads(recorded.splitlines()[-1])
    assert entry["operation"] == "rotate_secrets" and entry["summary"].startswith("2 of 2 rotated")
    rc, out, _err = run_playbook(os.path.join(ROOT, "playbooks", "rotate_secrets.yml"), str(inventory), {},
                                 callback="ansible.builtin.default")
    assert rc == 0 and "changed=0" in out
    assert [env_value(stack, v) for v in ("SANDBOX_APP_DB_PASSWORD", "SANDBOX_SESSION_SECRET")] == after


def test_a_mirror_that_fails_in_the_finish_step_reverts_the_rotation(stack, tmp_path):
    before = env_value(stack, "SANDBOX_SESSION_SECRET")
    mirror = dict(service="secretsmanager", name="sandbox/unreachable", endpoint_url="http://127.0.0.1:9",
                  access_key="x", secret_key="y")
    result = run_module("secret_rotate", session_rotation(stack, tmp_path, mirror=mirror))
    assert result["failed"] and result["reverted"] is True and "cannot mirror" in result["msg"], result["msg"]
    assert env_value(stack, "SANDBOX_SESSION_SECRET") == before and ready(stack)
    assert store(tmp_path, "session_secret", "pending") is None
    assert store(tmp_path, "session_secret", "current") == before


def test_a_secret_file_is_rotated_with_its_mode_kept(tmp_path):
    secret_file = tmp_path / "secrets" / "api_token"
    secret_file.parent.mkdir()
    secret_file.write_text("first-api-token-value-0123456789\n")
    secret_file.chmod(0o640)
    result = run_module("secret_rotate", dict(name="api_token", state_dir=str(tmp_path / "state"),
                                              files=[str(secret_file)], alphabet="hex", length=40))
    assert result.get("failed") is not True and result["rotated"], result["msg"]
    value = secret_file.read_text().strip()
    assert len(value) == 40 and set(value) <= set("0123456789abcdef")
    assert secret_file.stat().st_mode & 0o777 == 0o640
    assert store(tmp_path, "api_token", "previous") == "first-api-token-value-0123456789"
    refused = run_module("secret_rotate", dict(name="api_token", state_dir=str(tmp_path / "state"),
                                               files=[str(secret_file)], value=value))
    assert refused["failed"] and "is the current value" in refused["msg"] and value not in json.dumps(refused)
