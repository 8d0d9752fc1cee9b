"""What ships for monitoring and for AWX works with what the roles really do.

Monitoring reads what the roles write: every metric name the alerting rules and the Grafana dashboard query, and
every operation they select, is collected from a run of the backup, drill, health, maintenance, rotation and deploy
roles against a copy of the sandbox (disaster recovery's names: test_disaster_recovery). The dashboard is a
dashboard model whose queries Prometheus parses. The status playbook, on the same host, says all is well - then
fails, naming the backups, once they are older than the RPO.

The awx/ wrapper playbooks run through ansible-runner, AWX's job engine, as AWX runs them: survey answers and a
workflow's artifacts as extra vars, the backup job's set_stats artifact handed to the drill job, which drills that
very backup, and no secret in the job events."""

import getpass
import json
import os
import re
import subprocess

import pytest
import yaml

from conftest import (DASHBOARD, ROOT, failures, observability_metric_names, observability_queries, postgres_image,
                      run_playbook, running_stack, task_results)

# the roles the run below covers, each in its own play as a user's site playbook would have them
OPERATIONS = ["backup", "restore_drill", "health", "maintenance", "rotate_secrets", "deploy"]


@pytest.fixture(scope="module")
def operated(tmp_path_factory, s3):
    base = tmp_path_factory.mktemp("observability")
    with running_stack(base) as stack:
        metrics = base / "textfile"
        metrics.mkdir()
        ready = [dict(name="ready", type="http", url=stack.url + "/health/ready")]
        host = dict(
            ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
            report_ledger_path=str(base / "ledger.jsonl"), report_metrics_dir=str(metrics),
            report_status_path=str(base / "status.md"),
            backup_databases=["app"], backup_container=stack.postgres, backup_dest=str(base / "backups"),
            backup_volumes=[stack.name + "-uploads"], backup_volume_dest=str(base / "volume-backups"),
            backup_s3=s3.options("observability/" + stack.name),
            # the volumes' offsite copy elsewhere than PREFIX/volumes: the status page must look there
            backup_volume_s3=s3.options("observability-volumes/" + stack.name),
            restore_drill_database="app", restore_drill_path=str(base / "backups"), restore_drill_image=postgres_image(),
            restore_drill_log_dir=str(base / "drills"), restore_drill_rto_seconds=300,
            health_checks=ready + [dict(name="postgres container", type="container", container=stack.postgres)],
            maintenance_databases=["app"], maintenance_container=stack.postgres,
            maintenance_backup_path=str(base / "backups"), maintenance_report_dir=str(base / "maintenance"),
            rotate_secrets_state_dir=str(base / "secrets"),
            rotate_secrets_list=[dict(name="session_secret", current_value="observability-session-secret-0",
                                      project_src=stack.dir, project_name=stack.name,
                                      restart_services=["api"], health_checks=ready,
                                      env_files=[dict(path=stack.env_file, variable="SANDBOX_SESSION_SECRET")])],
            deploy_project_dir=stack.dir, deploy_project_name=stack.name, deploy_services=["api"],
            deploy_ledger_path=stack.ledger, deploy_health_checks=ready, deploy_health_interval=0.5,
            deploy_health_timeout=60, deploy_monitor=2, deploy_version_url=stack.url + "/api/version",
            deploy_version="1.1.0")
        inventory = base / "hosts.json"
        # one host in both of the groups the AWX templates limit their jobs to
        inventory.write_text(json.dumps({"all": {"children": {"db": {"hosts": {"db1": host}}, "app": {"hosts": {"db1": {}}}}}}))
        site = base / "site.yml"
        site.write_text(yaml.safe_dump([dict(name="Run " + role, hosts="db1", gather_facts=False,
                                             roles=["stackops.runbook." + role]) for role in OPERATIONS]))
        rc, out, err = run_playbook(str(site), str(inventory), {})
        assert rc == 0, failures(out) + err[-2000:]
        yield stack, base, str(inventory), metrics


def written(metrics):
    """{metric name: {operation label values}} of every textfile the roles wrote, read by Prometheus's parser."""
    from prometheus_client.parser import text_string_to_metric_families
    names = {}
    for file_name in os.listdir(metrics):
        with open(os.path.join(metrics, file_name)) as fh:
            for family in text_string_to_metric_families(fh.read()):
                for sample in family.samples:
                    names.setdefault(sample.name, set()).add(sample.labels.get("operation"))
    return names


def selected_operations():
    """The operations the rules and the dashboard select by name: operation="x" and operation=~"a|b"."""
    found = set()
    for query in observability_queries():
        for _op, value in re.findall(r'operation\s*(=~?)\s*"([^"]+)"', query):
            found.update(value.split("|"))
    return found


def test_every_metric_the_rules_and_the_dashboard_read_is_one_the_roles_write(operated):
    _stack, _base, _inventory, metrics = operated
    names = written(metrics)
    wanted = observability_metric_names() - observability_metric_names("stackops_dr_")
    assert wanted and sorted(wanted - set(names)) == []
    # the operations: each one the run covered has its result and last success, each scheduled one (all but deploys,
    # which people start) the interval StackopsOperationOverdue compares with
    for operation in OPERATIONS:
        for name in ("stackops_operation_failed", "stackops_operation_last_success_timestamp_seconds"):
            assert operation in names[name], (operation, name)
    assert names["stackops_operation_interval_seconds"] == set(OPERATIONS) - {"deploy"}
    # the textfiles StackopsJobNotRunning watches by name (node_textfile_mtime_seconds{file=~...}) are the ones written
    (pattern,) = {m for query in observability_queries() for m in re.findall(r'file=~"([^"]+)"', query)}
    matched = [f for f in os.listdir(metrics) if re.fullmatch(pattern.replace("[.]", r"\."), f)]
    assert sorted(matched) == sorted("stackops_runbook_%s_result.prom" % op for op in OPERATIONS)
    # an operation a rule selects by name is one a role reports (the others are covered by their own tests' runs)
    reported = set()
    for tasks in os.listdir(os.path.join(ROOT, "roles")):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "roles", tasks, "tasks")):
            for file_name in files:
                with open(os.path.join(dirpath, file_name)) as fh:
                    reported.update(re.findall(r"report_operation: ([a-z_]+)\s*$", fh.read(), re.M))
    assert selected_operations() - set(OPERATIONS) <= reported and set(OPERATIONS) <= reported


def test_the_dashboard_is_a_dashboard_model_whose_queries_prometheus_parses(tmp_path):
    with open(DASHBOARD) as fh:
        dashboard = json.load(fh)
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "instance"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["type"] in ("stat", "timeseries", "table") and panel["datasource"]["uid"] == "${datasource}"
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
    # promtool parses every query as a recording rule ($instance as Grafana would substitute it)
    rules = dict(groups=[dict(name="dashboard", rules=[
        dict(record="dashboard:query_%d" % i, expr=query.replace("$instance", ".*"))
        for i, query in enumerate(observability_queries())])])
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_status_playbook_says_all_is_well_then_fails_naming_the_backups_older_than_the_rpo(operated, capsys):
    stack, base, inventory, _metrics = operated
    rc, out, err = run_playbook(os.path.join(ROOT, "playbooks", "status.yml"), inventory, {})
    assert rc == 0, failures(out) + err[-2000:]
    status = task_results(out, "Read the backups, drills, releases and secrets the roles left on the host")
    assert status["problems"] == [] and status["notes"] == []
    rows = {row["what"]: row for row in status["backups"]}
    assert sorted(rows) == ["database app", "the globals", "volume %s-uploads" % stack.name]
    assert all(r["verified"] and r["offsite"] and not r["anomalous"] and r["age_seconds"] < 3600 for r in rows.values())
    (drill,) = status["drills"]
    assert drill["passed"] and 0 < drill["restore_seconds"] < drill["rto_seconds"] == 300
    assert status["release"]["serving_version"] == "1.1.0" and status["release"]["last_result"] == "succeeded"
    # who deployed: the login name when no AWX or Semaphore user is known (was Ansible's omit placeholder, "<<Omit>>")
    assert status["release"]["last_actor"] == getpass.getuser()
    (secret,) = status["secrets"]
    assert secret["name"] == "session_secret" and secret["age_seconds"] < 3600 and not secret["pending"]
    page = (base / "status.md").read_text()
    assert "**Everything is OK.**" in page and "## Health: healthy" in page and "Serving 1.1.0" in page
    with capsys.disabled():
        print("\n[status]\n" + page)

    rc, out, _err = run_playbook(os.path.join(ROOT, "playbooks", "status.yml"), inventory, dict(report_status_rpo="1s"))
    assert rc != 0
    message = task_results(out, "Fail when something needs a person")["msg"]
    assert message.startswith("3 thing(s) need a person on db1: newest backup of database app is ")
    assert "older than the RPO (1 s)" in message and "the globals" in message and stack.name + "-uploads" in message
    assert "3 thing(s) need a person" in (base / "status.md").read_text()


# ---------------------------------------------------------------- AWX through its engine (ansible-runner)

def awx_templates():
    """The job templates awx/configure.yml defines, by playbook: limit and survey."""
    with open(os.path.join(ROOT, "awx", "configure.yml")) as fh:
        (play,) = yaml.safe_load(fh)
    return {t["playbook"]: t for t in play["vars"]["stackops_awx_templates"]}


def awx_job(base, playbook, inventory, extra_vars):
    """One AWX job as AWX's engine runs it: a private data dir holding the inventory, the extra vars (the template's
    survey answers and a workflow's artifacts) and the environment, the project's playbook, the template's limit."""
    import ansible_runner
    template = awx_templates()[playbook]
    data_dir = base / ("job-" + os.path.basename(playbook).split(".")[0] + "-" + str(len(os.listdir(base))))
    (data_dir / "inventory").mkdir(parents=True)
    (data_dir / "inventory" / "hosts.json").write_text(open(inventory).read())
    job = ansible_runner.run(
        private_data_dir=str(data_dir), project_dir=ROOT, playbook=playbook, limit=template["limit"],
        extravars=extra_vars, quiet=True,
        envvars=dict(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"), ANSIBLE_NOCOLOR="1",
                     PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"]))
    events = list(job.events)
    stats = [e for e in events if e["event"] == "playbook_on_stats"]
    artifacts = stats[-1]["event_data"]["artifact_data"] if stats else {}
    return job, events, artifacts, data_dir


def survey_answers(playbook, **answers):
    """Extra vars as AWX builds them from a template's survey: every question's variable, answered or its default."""
    spec = awx_templates()[playbook]["survey"]["spec"]
    assert set(answers) <= {q["variable"] for q in spec}
    return {q["variable"]: answers.get(q["variable"], q["default"]) for q in spec}


def test_awx_jobs_through_ansible_runner_hand_the_backup_to_the_drill_and_log_no_secret(operated, s3):
    stack, base, inventory, _metrics = operated
    jobs = base / "awx"
    jobs.mkdir()
    backup, _events, artifacts, _dir = awx_job(jobs, "awx/playbooks/backup.yml", inventory, {})
    assert (backup.status, backup.rc) == ("successful", 0)
    handed = artifacts["stackops_backup"]["db1"]
    assert handed["result"] == "succeeded" and handed["details"]["app"].startswith("app_")

    # a newer backup lands before the drill node starts: the workflow's drill must still drill what its backup made
    from conftest import run_module
    newer = run_module("pg_backup", dict(database="app", container=stack.postgres, dest=str(base / "backups")))
    assert not newer.get("failed") and newer["manifest"]["name"] != handed["details"]["app"]
    drill, events, drill_artifacts, _dir = awx_job(jobs, "awx/playbooks/restore_drill.yml", inventory, artifacts)
    assert (drill.status, drill.rc) == ("successful", 0)
    drilled = [e["event_data"]["res"] for e in events if e["event"] == "runner_on_ok"
               and e["event_data"].get("task") == "Restore the backup into a throwaway target and grade it"]
    assert [r["backup"] for r in drilled] == [handed["details"]["app"]]
    assert drill_artifacts["stackops_restore_drill"]["db1"]["result"] == "succeeded"
    # outside a workflow (no artifacts) the same job drills the latest
    alone, events, _artifacts, _dir = awx_job(jobs, "awx/playbooks/restore_drill.yml", inventory, {})
    assert alone.status == "successful"
    assert [e["event_data"]["res"]["backup"] for e in events if e["event"] == "runner_on_ok" and e["event_data"].get(
        "task") == "Restore the backup into a throwaway target and grade it"] == [newer["manifest"]["name"]]

    # a template with a survey: the answers arrive as extra vars, the default for the unanswered ones
    deploy, _events, deploy_artifacts, _dir = awx_job(jobs, "awx/playbooks/deploy.yml", inventory,
                                                      survey_answers("awx/playbooks/deploy.yml", deploy_version="1.0.0"))
    assert (deploy.status, deploy.rc) == ("successful", 0) and stack.version() == "1.0.0"
    assert deploy_artifacts["stackops_deploy"]["db1"]["result"] == "succeeded"

    # no secret in any job's events or output, as AWX would store and show them
    secrets, scanned = [s3.secret_key, "deploy-test-password"], 0
    for path, _dirs, files in os.walk(jobs):
        for file_name in files:
            with open(os.path.join(path, file_name), errors="replace") as fh:
                text = fh.read()
            if file_name in ("hosts.json",):  # the inventory AWX holds, with its credentials
                continue
            scanned += path.endswith("job_events")
            for secret in secrets:
                assert secret not in text, (secret[:4], os.path.join(path, file_name))
    assert scanned > 100  # every event of the four jobs
