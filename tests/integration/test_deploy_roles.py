"""The deploy, migrate and rollback roles through their playbooks, on copies of the sandbox's stack: a rolling
deploy over two app hosts that stops at the first failure, a migration that fails half-way and is restored
from its pre-migration backup, and a rollback that takes the database back with the release."""

import json
import os

import pytest

from conftest import ROOT, run_playbook, running_stack, task_results

PLAYBOOKS = os.path.join(ROOT, "playbooks")
MIGRATE = ["python3", "/app/demo_api.py", "migrate"]
MIGRATE_STATUS = ["python3", "/app/demo_api.py", "migrate", "status"]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("app1")) as first, \
            running_stack(tmp_path_factory.mktemp("app2")) as second:
        yield first, second


def metrics_dir(stack, tmp_path):
    path = tmp_path / ("metrics-" + stack.name)
    path.mkdir(exist_ok=True)
    return str(path)


def rolled_back(stack, tmp_path):
    """The deploy's rolled-back gauge as node_exporter would read it."""
    with open(os.path.join(metrics_dir(stack, tmp_path), "stackops_runbook_deploy.prom")) as fh:
        line = [l for l in fh if l.startswith("stackops_deploy_rolled_back{")][0]
    assert 'project="%s"' % stack.name in line
    return int(line.split()[-1])


def host_vars(stack, tmp_path):
    return dict(
        ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
        deploy_project_dir=stack.dir, deploy_project_name=stack.name, deploy_services=["api"],
        deploy_ledger_path=stack.ledger, deploy_health_interval=0.5, deploy_health_timeout=30, deploy_monitor=3,
        deploy_keep_releases=50, deploy_version_url=stack.url + "/api/version",
        deploy_health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")],
        rollback_project_dir=stack.dir, rollback_project_name=stack.name, rollback_ledger_path=stack.ledger,
        rollback_version_url=stack.url + "/api/version", rollback_monitor=2, rollback_database="app",
        rollback_container=stack.postgres, rollback_backup_path=str(tmp_path / ("pre-migration-" + stack.name)),
        report_ledger_path=str(tmp_path / "ledger.jsonl"), report_metrics_dir=metrics_dir(stack, tmp_path),
        # the migrate role's own variables, which deploy_migrate runs it with
        migrate_command=MIGRATE, migrate_status_command=MIGRATE_STATUS, migrate_database="app",
        migrate_container=stack.postgres, migrate_restore_on_failure=True,
        migrate_backup_dest=str(tmp_path / ("pre-migration-" + stack.name)),
    )


def inventory(tmp_path, stacks):
    path = tmp_path / "hosts.json"
    hosts = {"app%d" % (i + 1): host_vars(stack, tmp_path) for i, stack in enumerate(stacks)}
    path.write_text(json.dumps({"all": {"children": {"app": {"hosts": hosts}}}}))
    return str(path)


def test_a_rolling_deploy_stops_at_the_first_failed_host_and_leaves_the_next_untouched(stacks, tmp_path):
    first, second = stacks
    untouched = second.api_containers()
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), inventory(tmp_path, stacks),
                                 dict(deploy_version="1.2.0-never-healthy"))
    assert rc != 0
    failed = task_results(out, "Stop here, the deploy failed", host="app1")
    assert "Rolled back: 1.0.0 serves again" in failed["msg"]
    assert first.version() == "1.0.0" and first.ledger_entries()[-1]["result"] == "rolled_back"
    assert rolled_back(first, tmp_path) == 1  # the alert StackopsDeployRolledBack fires
    # the play stopped after app1: app2 never started a deploy
    assert "app2" not in json.dumps([t["hosts"] for p in out["plays"] for t in p["tasks"]])
    assert second.api_containers() == untouched and second.version() == "1.0.0"
    assert not os.path.exists(second.ledger)

    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), inventory(tmp_path, stacks),
                                 dict(deploy_version="1.5.0"))
    assert rc == 0, json.dumps(out)[-2000:]
    assert first.version() == "1.5.0" and second.version() == "1.5.0"
    lines = [json.loads(line) for line in open(tmp_path / "ledger.jsonl")]
    assert [(e["operation"], e["result"]) for e in lines[-2:]] == [("deploy", "succeeded")] * 2
    assert rolled_back(first, tmp_path) == 0 and rolled_back(second, tmp_path) == 0


def schema_and_counts(stack):
    columns = stack.psql("SELECT table_name || '.' || column_name FROM information_schema.columns "
                         "WHERE table_schema = 'public' ORDER BY 1")
    counts = {t: stack.psql("SELECT count(*) FROM %s" % t)[0][0]
              for t in ("users", "refresh_tokens", "organizations")}
    return columns, counts


def test_a_failed_migration_is_restored_and_the_app_keeps_the_old_version(stacks, tmp_path):
    stack = stacks[1]
    before = schema_and_counts(stack)
    running = stack.version()
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), inventory(tmp_path, [stack]),
                                 dict(deploy_version="1.4.0-bad-migration", deploy_migrate=True))
    assert rc != 0
    message = task_results(out, "Stop here, the deploy failed", host="app1")["msg"]
    assert "Run the migration" in message and "was restored" in message, message
    # migration 002 had committed (a new table, revoked tokens deleted) before 003 failed: all of it is undone
    assert schema_and_counts(stack) == before
    assert stack.psql("SELECT to_regclass('public.token_cleanups') IS NULL")[0][0] == "t"
    assert stack.version() == running and stack.env_version() == running


def test_a_migration_then_a_rollback_with_the_database(stacks, tmp_path):
    stack = stacks[1]
    start = stack.version()
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "deploy.yml"), inventory(tmp_path, [stack]),
                                 dict(deploy_version="1.1.0", deploy_migrate=True))
    assert rc == 0, json.dumps(out)[-3000:]
    assert stack.version() == "1.1.0"
    assert ["users", "timezone"] in [c[0].split(".") for c in stack.psql(
        "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE column_name = 'timezone'")]

    # without the confirmation nothing happens
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "rollback.yml"), inventory(tmp_path, [stack]),
                                 dict(rollback_restore_database=True))
    assert rc != 0 and "Refusing to roll back the database" in json.dumps(out)
    assert stack.version() == "1.1.0"

    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "rollback.yml"), inventory(tmp_path, [stack]),
                                 dict(rollback_restore_database=True, rollback_confirm="app"))
    assert rc == 0, json.dumps(out)[-3000:]
    assert stack.version() == start
    assert stack.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'timezone'")[0][0] == "0"
    assert stack.ledger_entries()[-1]["action"] == "rollback"
