"""The roles as users run them (ansible-playbook with the shipped playbooks): what they tell a chat webhook,
what they write to the audit ledger and for node_exporter, and that no secret reaches any of it or the
play's own output, even at -vvv."""

import json
import os
import re
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import local_inventory, run_playbook, task_results

WEBHOOK_TOKEN = "T0K3N" + uuid.uuid4().hex[:16]


class Webhook:
    """A Slack-compatible incoming webhook on loopback that keeps what it receives."""

    def __init__(self, status=200):
        self.messages = []
        self.status = status
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                webhook.messages.append(dict(path=self.path, payload=json.loads(body)))
                self.send_response(webhook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, fmt, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/services/%s" % (self.server.server_address[1], WEBHOOK_TOKEN)

    def texts(self):
        return [m["payload"]["text"] for m in self.messages]

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture
def reporting(tmp_path, webhook):
    metrics = tmp_path / "textfile"
    metrics.mkdir()
    return dict(report_ledger_path=str(tmp_path / "log" / "ledger.jsonl"), report_metrics_dir=str(metrics),
                report_webhook_url=webhook.url)


def ledger(reporting):
    with open(reporting["report_ledger_path"]) as fh:
        return [json.loads(line) for line in fh]


def metric_samples(path):
    """{(name, labels...): value} through Prometheus's own text parser (which rejects a malformed file)."""
    with open(path) as fh:
        families = list(text_string_to_metric_families(fh.read()))
    return {(s.name,) + tuple(sorted(s.labels.items())): s.value for f in families for s in f.samples}


def backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting):
    connection = dict(login_host="127.0.0.1", login_port=host_pg.port, login_password=host_pg.password)
    return dict(reporting, backup_connection=connection, backup_dest=str(tmp_path / "backups"),
                backup_databases=["app"], backup_s3=s3.options(s3_prefix))


def test_a_backup_is_announced_recorded_and_published_without_any_secret(host_pg, s3, s3_prefix, tmp_path, webhook,
                                                                         reporting):
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path),
                                      backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting),
                                      verbosity=3, callback="ansible.builtin.default")
    assert rc == 0, output[-3000:] + stderr

    assert len(webhook.texts()) == 2
    started, succeeded = webhook.texts()
    assert "backup started on db1" in started
    assert "backup succeeded on db1" in succeeded
    assert re.search(r"app [\d.]+ (KiB|MiB), \d+s old \(app_\d{8}T\d{6}Z\)", succeeded), succeeded
    assert webhook.messages[1]["payload"]["attachments"][0]["color"] == "good"

    entries = ledger(reporting)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["operation"] == "backup" and entry["result"] == "succeeded"
    assert entry["inputs"]["databases"] == ["app"] and entry["inputs"]["s3"]["secret_key"] == "********"
    assert entry["duration_seconds"] > 0 and entry["actor"] and entry["controller"]
    assert entry["details"]["app"].startswith("app_")

    samples = metric_samples(os.path.join(reporting["report_metrics_dir"], "stackops_runbook_backup.prom"))
    assert samples[("stackops_backup_verified", ("database", "app"))] == 1
    assert samples[("stackops_backup_anomalous", ("database", "app"))] == 0
    assert samples[("stackops_backup_size_bytes", ("database", "app"))] > 1000
    # the RPO the alert compares with is published beside the backup's time (backup_rpo, 26h)
    assert samples[("stackops_backup_rpo_seconds", ("database", "app"))] == 26 * 3600
    assert abs(samples[("stackops_backup_last_success_timestamp_seconds", ("database", "app"))]
               - os.path.getmtime(reporting["report_ledger_path"])) < 120

    # no secret anywhere: the play's -vvv output, the ledger, the messages, the metrics
    with open(reporting["report_ledger_path"]) as fh:
        ledger_text = fh.read()
    everything = output + stderr + ledger_text + json.dumps([m["payload"] for m in webhook.messages])
    for secret in (host_pg.password, s3.secret_key, WEBHOOK_TOKEN):
        assert secret not in everything


def test_a_failed_backup_is_announced_and_recorded_as_failed(host_pg, s3, s3_prefix, tmp_path, webhook, reporting):
    variables = backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting)
    variables["backup_databases"] = ["no_such_database"]
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables, verbosity=3,
                                      callback="ansible.builtin.default")
    assert rc != 0
    assert "The backup failed at \"Back up each database\"" in output
    assert "Earlier backups are untouched" in output
    texts = webhook.texts()
    assert len(texts) == 2 and "backup failed on db1" in texts[1] and "no_such_database" in texts[1]
    assert webhook.messages[1]["payload"]["attachments"][0]["color"] == "danger"
    entries = ledger(reporting)
    assert [e["result"] for e in entries] == ["failed"]
    assert "no_such_database" in entries[0]["summary"]
    for secret in (host_pg.password, s3.secret_key, WEBHOOK_TOKEN):
        assert secret not in output + stderr + json.dumps(entries) + json.dumps([m["payload"] for m in webhook.messages])


def test_an_unreachable_webhook_warns_and_does_not_fail_the_backup(host_pg, s3, s3_prefix, tmp_path, webhook,
                                                                   reporting):
    webhook.status = 500
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path),
                                      backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting))
    assert rc == 0, stderr
    announce = task_results(output, "Announce how the operation ended")
    assert announce["sent"] is False and announce["status"] == 500
    assert any("the webhook answered HTTP 500" in w for w in announce.get("warnings", []))
    assert [e["result"] for e in ledger(reporting)] == ["succeeded"]


def test_a_second_backup_within_the_interval_changes_nothing(host_pg, s3, s3_prefix, tmp_path, reporting):
    variables = dict(backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting), backup_min_interval="1h",
                     report_webhook_url="")
    rc, _output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
    assert rc == 0, stderr
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
    assert rc == 0, stderr
    assert output["stats"]["db1"]["changed"] == 0
    assert [e["result"] for e in ledger(reporting)] == ["succeeded", "skipped"]
    assert "skipped, recent enough: app, globals" in ledger(reporting)[1]["summary"]


def test_the_health_role_fails_on_down_and_publishes_the_verdict(tmp_path, webhook, reporting):
    inventory = local_inventory(tmp_path)
    metrics = os.path.join(reporting["report_metrics_dir"], "stackops_runbook_health.prom")
    healthy = dict(reporting, health_checks=[{"name": "root disk", "type": "disk", "path": "/",
                                              "warning_percent": 99, "critical_percent": 100}])
    rc, output, stderr = run_playbook("playbooks/health.yml", inventory, healthy)
    assert rc == 0, stderr
    assert metric_samples(metrics)[("stackops_health_verdict",)] == 0
    success_file = os.path.join(reporting["report_metrics_dir"], "stackops_runbook_health_success.prom")
    first_success = metric_samples(success_file)
    # hourly health checks do not post "started"
    assert len(webhook.texts()) == 1 and "health succeeded on db1: healthy" in webhook.texts()[0]

    down = dict(reporting, health_checks=[{"name": "api", "type": "tcp", "host": "127.0.0.1", "port": 1}])
    rc, output, stderr = run_playbook("playbooks/health.yml", inventory, down)
    assert rc != 0
    failure = task_results(output, "Fail when the stack is not healthy enough")
    assert "Failing checks: api:" in failure["msg"]
    samples = metric_samples(metrics)
    assert samples[("stackops_health_verdict",)] == 2
    assert samples[("stackops_health_check_up", ("check", "api"), ("severity", "critical"))] == 0
    assert "health failed on db1: down" in webhook.texts()[-1]
    assert [e["result"] for e in ledger(reporting)] == ["succeeded", "failed"]
    # every run publishes its result; the failed one left the last success (and the interval) as they were
    result = metric_samples(os.path.join(reporting["report_metrics_dir"], "stackops_runbook_health_result.prom"))
    assert result[("stackops_operation_failed", ("operation", "health"))] == 1
    assert metric_samples(success_file) == first_success
    assert first_success[("stackops_operation_interval_seconds", ("operation", "health"))] == 2 * 3600


def test_the_restore_role_refuses_without_confirmation_and_changes_nothing(host_pg, tmp_path, reporting):
    rc, output, stderr = run_playbook("playbooks/restore.yml", local_inventory(tmp_path), dict(
        reporting, restore_database="app", restore_path=str(tmp_path), restore_connection=dict(
            login_host="127.0.0.1", login_port=host_pg.port, login_password=host_pg.password)))
    assert rc != 0
    refusal = task_results(output, "Check the restore settings")
    assert refusal["msg"] == ("Refusing to restore: this replaces the database app on db1. "
                              "Set restore_confirm=app to confirm.")
    assert not os.path.exists(reporting["report_ledger_path"])


def test_the_restore_role_brings_back_lost_rows_and_reports(host_pg, tmp_path, webhook, reporting):
    connection = dict(login_host="127.0.0.1", login_port=host_pg.port, login_password=host_pg.password)
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS role_restore")
    host_pg.psql("postgres", "CREATE DATABASE role_restore TEMPLATE app")
    counts = "SELECT (SELECT count(*) FROM refresh_tokens) || ' ' || (SELECT count(*) FROM security_events)"
    before = host_pg.psql("role_restore", counts)
    inventory = local_inventory(tmp_path)
    rc, _output, stderr = run_playbook("playbooks/backup.yml", inventory, dict(
        reporting, report_webhook_url="", backup_databases=["role_restore"], backup_globals=False,
        backup_dest=str(tmp_path / "backups"), backup_connection=connection))
    assert rc == 0, stderr
    host_pg.psql("role_restore", "DELETE FROM refresh_tokens WHERE revoked; DELETE FROM security_events")

    rc, output, stderr = run_playbook("playbooks/restore.yml", inventory, dict(
        reporting, restore_database="role_restore", restore_confirm="role_restore",
        restore_path=str(tmp_path / "backups"), restore_connection=connection),
        verbosity=3, callback="ansible.builtin.default")
    assert rc == 0, output[-3000:] + stderr
    assert host_pg.psql("role_restore", counts) == before
    restore = ledger(reporting)[-1]
    assert restore["operation"] == "restore" and restore["result"] == "succeeded"
    assert restore["details"]["differences"] == {}
    assert "restore succeeded on db1" in webhook.texts()[-1]
    assert host_pg.password not in output + stderr + json.dumps(ledger(reporting))


def test_restore_and_drill_in_check_mode_change_nothing(host_pg, tmp_path, reporting):
    connection = dict(login_host="127.0.0.1", login_port=host_pg.port, login_password=host_pg.password)
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS role_check")
    host_pg.psql("postgres", "CREATE DATABASE role_check TEMPLATE app")
    inventory = local_inventory(tmp_path)
    backups = str(tmp_path / "backups")
    rc, _output, stderr = run_playbook("playbooks/backup.yml", inventory, dict(
        reporting, report_webhook_url="", backup_databases=["role_check"], backup_globals=False, backup_dest=backups,
        backup_connection=connection))
    assert rc == 0, stderr
    host_pg.psql("role_check", "DELETE FROM security_events")
    lines_before = len(ledger(reporting))

    rc, output, stderr = run_playbook("playbooks/restore.yml", inventory, dict(
        reporting, report_webhook_url="", restore_database="role_check", restore_confirm="role_check",
        restore_path=backups, restore_connection=connection), check=True)
    assert rc == 0, stderr
    assert task_results(output, "Restore the backup")["changed"]
    assert host_pg.psql("role_check", "SELECT count(*) FROM security_events") == "0"

    drills = tmp_path / "drills"
    rc, output, stderr = run_playbook("playbooks/restore_drill.yml", inventory, dict(
        reporting, report_webhook_url="", restore_drill_database="role_check", restore_drill_path=backups,
        restore_drill_image="", restore_drill_log_dir=str(drills),
        restore_drill_connection=connection), check=True)
    assert rc == 0, stderr
    assert not drills.exists()
    assert "stackops_drill_" not in host_pg.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database")
    assert len(ledger(reporting)) == lines_before


def test_maintenance_vacuums_reports_and_fails_when_the_newest_backup_is_older_than_the_rpo(host_pg, tmp_path,
                                                                                            reporting):
    from conftest import age_backup, run_module
    backups = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=backups))
    assert not made.get("failed"), made.get("msg")
    settings = dict(reporting, report_webhook_url="", maintenance_databases=["app"], maintenance_backup_path=backups,
                    maintenance_report_dir=str(tmp_path / "reports"), maintenance_connection=dict(
                        login_host="127.0.0.1", login_port=host_pg.port, login_password=host_pg.password))
    inventory = local_inventory(tmp_path)
    rc, output, stderr = run_playbook("playbooks/maintenance.yml", inventory, settings)
    assert rc == 0, stderr
    vacuumed = task_results(output, "VACUUM (ANALYZE) each database")["results"][0]["tables"]
    assert {t["table"] for t in vacuumed} >= {"public.users", "public.orders"}
    assert all(t["actions"] == ["vacuumed"] for t in vacuumed)
    (report,) = os.listdir(tmp_path / "reports")
    text = (tmp_path / "reports" / report).read_text()
    assert "| public.users |" in text and "All backups are within the RPO." in text

    age_backup(backups, made["manifest"]["name"], 2)
    rc, output, stderr = run_playbook("playbooks/maintenance.yml", inventory, settings)
    assert rc != 0
    failure = task_results(output, "Stop here, the maintenance found a problem")
    assert "The latest backup of app is older than the RPO (26h)" in failure["msg"]
    assert [e["result"] for e in ledger(reporting)] == ["succeeded", "failed"]
    assert host_pg.password not in json.dumps(output) + json.dumps(ledger(reporting))


def test_one_connection_dict_reaches_every_role_ssl_mode_included(host_pg, tmp_path, reporting):
    # stackops_connection, set once, is what the backup and maintenance roles connect with: ssl_mode=require
    # against this server (no SSL) makes both fail saying so; without it they connect
    connection = dict(login_host="127.0.0.1", login_port=host_pg.port, login_password=host_pg.password)
    play = dict(reporting, report_webhook_url="", backup_databases=["app"], backup_globals=False,
                backup_dest=str(tmp_path / "backups"), maintenance_databases=["app"],
                maintenance_report_dir=str(tmp_path / "reports"), maintenance_backup_path=str(tmp_path / "backups"))
    for playbook, task in (("playbooks/backup.yml", "Back up, copy offsite and prune"),
                           ("playbooks/maintenance.yml", "VACUUM (ANALYZE) each database")):
        rc, output, _stderr = run_playbook(playbook, local_inventory(tmp_path), dict(
            play, stackops_connection=dict(connection, ssl_mode="require")))
        assert rc != 0
        assert "server does not support SSL" in json.dumps(output), playbook
    rc, _output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path),
                                       dict(play, stackops_connection=connection))
    assert rc == 0, stderr


class DeadMansSwitch:
    """A healthchecks.io-compatible ping endpoint on loopback: keeps (path, body) of each ping."""

    def __init__(self):
        self.pings = []
        switch = self
        self.check = uuid.uuid4().hex

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                switch.pings.append((self.path, body.decode()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, fmt, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/ping/%s" % (self.server.server_address[1], self.check)


@pytest.fixture
def switch():
    ping = DeadMansSwitch()
    yield ping
    ping.server.shutdown()


def test_a_dead_mans_switch_is_pinged_at_start_success_and_failure(host_pg, s3, s3_prefix, tmp_path, switch,
                                                                   reporting):
    variables = dict(backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting), report_ping_url=switch.url + "/",
                     report_webhook_url="")
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables, verbosity=3,
                                      callback="ansible.builtin.default")
    assert rc == 0, output[-3000:] + stderr
    assert [ping[0] for ping in switch.pings] == ["/ping/%s/start" % switch.check, "/ping/%s" % switch.check]
    assert re.search(r"app [\d.]+ (KiB|MiB), \d+s old", switch.pings[1][1]), switch.pings[1][1]
    assert switch.check not in output + stderr  # the URL is a capability: never in the output, even at -vvv

    variables["backup_databases"] = ["no_such_database"]
    rc, output, _stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
    assert rc != 0
    assert [ping[0] for ping in switch.pings[2:]] == ["/ping/%s/start" % switch.check, "/ping/%s/fail" % switch.check]
    assert "no_such_database" in switch.pings[3][1]
    for _path, body in switch.pings:
        assert host_pg.password not in body and s3.secret_key not in body


def test_a_dead_mans_switch_that_does_not_answer_never_fails_the_operation(host_pg, s3, s3_prefix, tmp_path,
                                                                           switch, reporting):
    switch.server.shutdown()
    switch.server.server_close()
    variables = dict(backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting), report_ping_url=switch.url,
                     report_ping_timeout=2, report_webhook_url="")
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
    assert rc == 0, stderr
    warning = task_results(output, "Warn that the dead man's switch was not pinged")
    assert "was not pinged" in warning["msg"] and switch.check not in json.dumps(output)
    assert [e["result"] for e in ledger(reporting)] == ["succeeded"]


def test_an_anomalous_backup_is_reported_as_a_warning_and_published(host_pg, s3, s3_prefix, tmp_path, webhook,
                                                                    reporting):
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS role_anomaly")
    host_pg.psql("postgres", "CREATE DATABASE role_anomaly TEMPLATE app")
    variables = dict(backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting), backup_databases=["role_anomaly"],
                     backup_keep_last=1, backup_keep_days=0)
    try:
        rc, _output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
        assert rc == 0, stderr
        host_pg.psql("role_anomaly", "DELETE FROM orders")
        rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
        assert rc == 0, stderr
    finally:
        host_pg.psql("postgres", "DROP DATABASE IF EXISTS role_anomaly")
    made = task_results(output, "Back up each database")["results"][0]
    assert made["anomalous"] and made["pruned"] == []
    assert [e["result"] for e in ledger(reporting)] == ["succeeded", "warning"]
    assert "ANOMALOUS: table public.orders lost 100%" in ledger(reporting)[1]["summary"]
    assert webhook.messages[-1]["payload"]["attachments"][0]["color"] == "warning"
    samples = metric_samples(os.path.join(reporting["report_metrics_dir"], "stackops_runbook_backup.prom"))
    assert samples[("stackops_backup_anomalous", ("database", "role_anomaly"))] == 1
    assert len([f for f in os.listdir(variables["backup_dest"]) if f.startswith("role_anomaly_")]) == 4


def test_the_roles_encrypt_and_restore_with_a_vaulted_identity_that_never_shows(host_pg, tmp_path, reporting):
    keyfile = str(tmp_path / "backup.key")
    subprocess.run(["age-keygen", "-o", keyfile], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", keyfile], check=True, capture_output=True, text=True).stdout.strip()
    with open(keyfile) as fh:
        identity = [line for line in fh.read().splitlines() if line.startswith("AGE-SECRET-KEY-1")][0]
    connection = dict(login_host="127.0.0.1", login_port=host_pg.port, login_password=host_pg.password)
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS role_sealed")
    host_pg.psql("postgres", "CREATE DATABASE role_sealed TEMPLATE app")
    inventory = local_inventory(tmp_path)
    backups = str(tmp_path / "backups")
    try:
        rc, _output, stderr = run_playbook("playbooks/backup.yml", inventory, dict(
            reporting, report_webhook_url="", backup_databases=["role_sealed"], backup_globals=False,
            backup_dest=backups, backup_connection=connection, backup_age_recipients=[recipient]))
        assert rc == 0, stderr
        assert [f for f in os.listdir(backups) if f.endswith(".dump.zst.age")]
        host_pg.psql("role_sealed", "DELETE FROM security_events")
        rc, output, stderr = run_playbook("playbooks/restore.yml", inventory, dict(
            reporting, report_webhook_url="", restore_database="role_sealed", restore_confirm="role_sealed",
            restore_path=backups, restore_connection=connection, restore_age_identity=identity),
            verbosity=3, callback="ansible.builtin.default")
        assert rc == 0, output[-3000:] + stderr
        assert host_pg.psql("role_sealed", "SELECT count(*) FROM security_events") != "0"
    finally:
        host_pg.psql("postgres", "DROP DATABASE IF EXISTS role_sealed")
    assert identity not in output + stderr + json.dumps(ledger(reporting))


def test_the_backup_role_backs_up_the_config_with_the_ledger(host_pg, s3, s3_prefix, tmp_path, reporting):
    project = tmp_path / "srv" / "myapp"
    project.mkdir(parents=True)
    (project / "compose.yml").write_text("services: {}\n")
    (project / ".env").write_text("SECRET=1\n")
    variables = dict(backup_vars(host_pg, tmp_path, s3, s3_prefix, reporting), report_webhook_url="",
                     backup_config_paths=[str(project)], backup_config_dest=str(tmp_path / "config"))
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
    assert rc != 0  # env files do not go to S3 unencrypted
    assert "allow_plaintext" in json.dumps(output)
    variables["backup_config_allow_plaintext"] = True
    run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)  # the ledger exists from now on
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables)
    assert rc == 0, stderr
    config = task_results(output, "Back up the stack's config files and the collection's ledger")
    paths = [e["path"] for e in config["manifest"]["entries"]]
    assert str(project / ".env") in paths and reporting["report_ledger_path"] in paths
    assert config["s3_uri"].startswith("s3://%s/%s/config/" % (s3.bucket, s3_prefix))
