"""What the roles report: secrets masked in ledger entries, the Prometheus text format, webhook messages,
the filters that summarise results, and following a tar stream fed in pieces."""

import io
import os
import tarfile

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.stackops.runbook.plugins.filter import runbook
from ansible_collections.stackops.runbook.plugins.module_utils import _reports as reports
from ansible_collections.stackops.runbook.plugins.module_utils._tar import TarReader


def test_secret_named_keys_and_listed_values_are_masked_everywhere():
    entry = dict(s3=dict(bucket="b", secret_key="S3CR3T", access_key="AK"), login_password="pw",
                 webhook_url="https://hooks/T0K", passed=True, keep_last=3,
                 summary="connected with pw-value-1 to db", checks=[{"name": "redis", "token": "x"}])
    masked = reports.mask(entry, secrets=["pw-value-1", ""])
    assert masked["s3"] == dict(bucket="b", secret_key=reports.MASK, access_key=reports.MASK)
    assert masked["login_password"] == reports.MASK and masked["webhook_url"] == reports.MASK
    assert masked["summary"] == "connected with %s to db" % reports.MASK
    assert masked["checks"][0]["token"] == reports.MASK
    # words that merely start like a secret name stay: passed, keep_last
    assert masked["passed"] is True and masked["keep_last"] == 3
    assert entry["s3"]["secret_key"] == "S3CR3T"  # the input is not changed


def test_the_exposition_parses_with_prometheus_and_groups_samples_by_name():
    metrics = [
        dict(name="stackops_backup_size_bytes", value=10, help="Size.", labels={"database": "b"}),
        dict(name="stackops_health_verdict", value=False, help="Verdict\nline two"),
        dict(name="stackops_backup_size_bytes", value=2.5e9, labels={"database": 'we"ird\\db'}),
    ]
    text = reports.exposition(metrics)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    sizes = {s.labels["database"]: s.value for s in families["stackops_backup_size_bytes"].samples}
    assert sizes == {"b": 10, 'we"ird\\db': 2.5e9}
    assert families["stackops_health_verdict"].samples[0].value == 0
    assert text.count("# TYPE stackops_backup_size_bytes gauge") == 1
    assert reports.exposition(list(reversed(metrics))) == text  # stable whatever the order


@pytest.mark.parametrize("metric,problem", [
    (dict(name="9lives", value=1), "is not a Prometheus metric name"),
    (dict(name="ok", value=1, type="histogram"), "type must be one of"),
    (dict(name="ok", value=1, labels={"__name": "x"}), "is not a Prometheus label name"),
    (dict(name="ok", value="many"), "is not a number"),
])
def test_bad_metrics_are_named_with_the_problem(metric, problem):
    assert problem in reports.validate_metric(0, metric)


def test_a_metric_file_is_replaced_whole(tmp_path):
    path = str(tmp_path / "x.prom")
    reports.replace_file(path, "a 1\n")
    reports.replace_file(path, "a 2\n")
    assert open(path).read() == "a 2\n" and os.listdir(tmp_path) == ["x.prom"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_the_webhook_message_is_slack_compatible():
    payload = reports.webhook_payload("backup", "failed", "db1", "pg_dump exited 1", {"database": "app"})
    assert payload["text"] == ":rotating_light: stackops.runbook backup failed on db1: pg_dump exited 1"
    assert payload["attachments"][0]["color"] == "danger"
    assert payload["attachments"][0]["fields"] == [dict(title="database", value="app", short=True)]


def test_the_backup_filters_summarise_and_measure_the_latest_backups():
    entry = dict(name="app_20261122T030000Z", database="app", size=8 * 1024 * 1024 + 1, age_seconds=7300,
                 timestamp=1795316400, duration_seconds=4.2, verified=True, kind="database")
    assert runbook.backup_line(entry) == "app 8.0 MiB, 2h old (app_20261122T030000Z)"
    volume = dict(entry, name="uploads_20261122T030000Z", database=None, kind="volume", verified=False)
    samples = {(m["name"], tuple(m["labels"].items())): m["value"] for m in runbook.backup_metrics([entry, volume])}
    assert samples[("stackops_backup_last_success_timestamp_seconds", (("database", "app"),))] == 1795316400
    assert samples[("stackops_backup_verified", (("volume", "uploads"),))] is False


def test_the_drill_and_health_filters():
    drill = dict(passed=True, started_at="2026-11-22T04:00:00.000000Z", database="app", restore_seconds=12.5,
                 rto_seconds=None)
    values = {m["name"]: m["value"] for m in runbook.drill_metrics(drill)}
    assert values == {"stackops_drill_passed": True, "stackops_drill_last_run_timestamp_seconds": 1795320000,
                      "stackops_drill_restore_seconds": 12.5, "stackops_drill_rto_seconds": 0}
    health = runbook.health_metrics(dict(status="degraded", checks=[dict(name="disk", status="warn",
                                                                         severity="warning")]))
    assert health[0]["value"] == 1 and health[1]["value"] is False
    assert runbook.seconds("26h") == 93600
    with pytest.raises(Exception, match="not a duration"):
        runbook.seconds("soon")


def make_tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(members):
            data = b"x" * (i * 101)
            info = tarfile.TarInfo("volume/%s/file-%d-%s" % ("d" * (i % 4), i, "long" * 30))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("piece", [1, 511, 512, 4096, 10 ** 7])
def test_a_tar_stream_is_followed_to_its_end_marker_in_any_pieces(piece):
    raw = make_tar(60)
    reader = TarReader()
    for start in range(0, len(raw), piece):
        reader.feed(raw[start:start + piece])
    assert reader.ended and reader.members == 60 and reader.bytes == sum(i * 101 for i in range(60))


def test_a_truncated_tar_stream_has_no_end_marker():
    raw = make_tar(20)
    reader = TarReader()
    reader.feed(raw[:len(raw) // 2])
    assert not reader.ended


def test_the_failure_message_names_the_failed_item_of_a_loop():
    loop = dict(msg="One or more items failed", results=[dict(failed=False, msg="ok"), dict(failed=True, msg="no db")])
    assert runbook.failure_message(loop) == "no db"
    assert runbook.failure_message(dict(msg="refused")) == "refused"
    assert runbook.failure_message({}) == "see the task output"


def test_the_failure_message_of_a_command_adds_its_last_line_of_stderr():
    failed = dict(msg="non-zero return code", rc=1, stderr_lines=["Traceback ...", "psycopg2.errors.NotNullViolation: x", ""])
    assert runbook.failure_message(failed) == "non-zero return code (rc=1): psycopg2.errors.NotNullViolation: x"


def test_the_failure_message_of_a_command_prefers_the_line_naming_the_error():
    failed = dict(msg="non-zero return code", rc=1, stderr="Traceback ...\npsycopg2.errors.UndefinedColumn: column "
                  "\"revoked\" does not exist\nLINE 4: WITH removed AS (DELETE ...\n        ^\n")
    assert runbook.failure_message(failed).endswith("UndefinedColumn: column \"revoked\" does not exist")
