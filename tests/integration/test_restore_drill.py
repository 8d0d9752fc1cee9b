"""restore_drill: drills pass on good backups of every format and compression, catch every planted
fault with the right reason in the log, and never leave a throwaway container or database behind."""

import json
import os
import socket
import subprocess

import pytest

from conftest import DRILL_LABEL, drill_leftovers, postgres_image, run_module

COMBINATIONS = [("custom", "zstd"), ("custom", "gzip"), ("custom", "none"), ("plain", "zstd"), ("plain", "gzip"),
                ("plain", "none"), ("directory", "gzip"), ("directory", "none")]


def backup(pg, dest, **kwargs):
    result = run_module("pg_backup", dict(pg.connection(), database="app", dest=dest, **kwargs))
    assert not result.get("failed"), result.get("msg")
    return result


def drill(dest, log_dir, **kwargs):
    args = dict(path=dest, database="app", drill_image=postgres_image(), log_dir=log_dir)
    args.update(kwargs)
    return run_module("restore_drill", args)


def read_log(result):
    with open(result["log_path"]) as fh:
        markdown = fh.read()
    with open(result["json_log_path"]) as fh:
        return markdown, json.load(fh)


@pytest.mark.parametrize("fmt,compression", COMBINATIONS)
def test_a_drill_passes_on_a_good_backup(host_pg, tmp_path, fmt, compression):
    made = backup(host_pg, str(tmp_path / "b"), format=fmt, compression=compression)
    result = drill(str(tmp_path / "b"), str(tmp_path / "logs"), critical_tables={"public.users": 20000},
                   spot_checks=["SELECT 1 FROM users WHERE email = 'user42@example.com'"], rto_seconds=600)
    assert not result.get("failed"), result.get("msg")
    assert result["passed"] and result["failures"] == []
    assert result["backup"] == made["manifest"]["name"]
    assert result["tables"] == 6 and result["rows"] == sum(made["manifest"]["row_counts"].values())
    assert 0 < result["restore_seconds"] < result["duration"]
    markdown, log = read_log(result)
    assert "| Result | **PASSED** |" in markdown and "| Tables restored | 6/6 |" in markdown
    assert "| Row counts match | yes |" in markdown
    assert log["passed"] is True and log["restored_counts"] == made["manifest"]["row_counts"]
    assert drill_leftovers() == []


def corrupt(path, how):
    with open(path, "r+b") as fh:
        if how == "flip":
            fh.seek(os.path.getsize(path) // 2)
            byte = fh.read(1)
            fh.seek(-1, os.SEEK_CUR)
            fh.write(bytes([byte[0] ^ 0xFF]))
        elif how == "truncate":
            fh.truncate(os.path.getsize(path) // 2)
        else:
            fh.truncate(0)


@pytest.mark.parametrize("how,kind", [("flip", "corrupt"), ("truncate", "corrupt"), ("empty", "empty")])
def test_a_damaged_file_fails_the_drill_before_any_restore(host_pg, tmp_path, how, kind):
    made = backup(host_pg, str(tmp_path / "b"))
    corrupt(made["path"], how)
    result = drill(str(tmp_path / "b"), str(tmp_path / "logs"))
    assert result["failed"] and result["passed"] is False
    assert [f["kind"] for f in result["failures"]] == [kind]
    assert result["restore_seconds"] is None and result["target"] is None
    markdown, log = read_log(result)
    assert "| Result | **FAILED** |" in markdown and "**%s**" % kind in markdown
    assert log["failures"][0]["corrective_action"] in markdown
    assert drill_leftovers() == []


def test_a_manifest_listing_a_table_the_dump_lacks_fails_as_missing_tables(host_pg, tmp_path):
    made = backup(host_pg, str(tmp_path / "b"))
    manifest = dict(made["manifest"])
    manifest["row_counts"] = dict(manifest["row_counts"], **{"public.invoices": 1200})
    with open(made["manifest_path"], "w") as fh:
        json.dump(manifest, fh)
    result = drill(str(tmp_path / "b"), str(tmp_path / "logs"))
    assert [f["kind"] for f in result["failures"]] == ["missing_tables"]
    assert "1 of 7 tables missing after the restore: public.invoices" in result["failures"][0]["message"]
    markdown, _log = read_log(result)
    assert "| Tables restored | 6/7 |" in markdown
    assert drill_leftovers() == []


def test_rows_deleted_from_the_source_after_the_backup_are_caught(host_pg, tmp_path):
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS app_drift")
    host_pg.psql("postgres", "CREATE DATABASE app_drift TEMPLATE app")
    made = run_module("pg_backup", dict(host_pg.connection(), database="app_drift", dest=str(tmp_path / "b")))
    host_pg.psql("app_drift", "DELETE FROM security_events WHERE id % 10 = 0")
    result = run_module("restore_drill", dict(path=str(tmp_path / "b"), database="app_drift",
                                              drill_image=postgres_image(), log_dir=str(tmp_path / "logs"),
                                              compare_source=dict(host_pg.connection(), database="app_drift")))
    assert [f["kind"] for f in result["failures"]] == ["source_drift"]
    assert "public.security_events: 30000 in the backup, 27000 in the source now" in result["failures"][0]["message"]
    assert made["manifest"]["row_counts"]["public.security_events"] == 30000
    assert host_pg.password not in json.dumps(result) and host_pg.password not in read_log(result)[0]
    assert drill_leftovers() == []


def test_a_spot_check_that_returns_nothing_fails_the_drill(host_pg, tmp_path):
    backup(host_pg, str(tmp_path / "b"))
    result = drill(str(tmp_path / "b"), str(tmp_path / "logs"),
                   spot_checks=["SELECT 1 FROM users LIMIT 1", "SELECT 1 FROM users WHERE email = 'nobody@nowhere'"])
    assert [f["kind"] for f in result["failures"]] == ["spot_check"]
    assert "nobody@nowhere' returned no rows" in result["failures"][0]["message"]
    assert drill_leftovers() == []


def test_a_restore_slower_than_the_rto_fails_the_drill_unless_told_not_to_fail(host_pg, tmp_path):
    backup(host_pg, str(tmp_path / "b"))
    # no restore of 135,000 rows takes under 50 ms, however fast the machine
    result = drill(str(tmp_path / "b"), str(tmp_path / "logs"), rto_seconds=0.05, fail_on_drill_failure=False)
    assert not result.get("failed") and result["passed"] is False
    assert [f["kind"] for f in result["failures"]] == ["rto"]
    assert "over the RTO of 0.05s" in result["failures"][0]["message"]
    markdown, _log = read_log(result)
    assert "RTO target: 0.05s" in markdown
    with open(os.path.join(str(tmp_path / "logs"), "history.jsonl")) as fh:
        history = [json.loads(line) for line in fh]
    assert [h["failures"] for h in history] == [["rto"]]
    assert drill_leftovers() == []


def test_a_drill_into_a_scratch_database_drops_it_afterwards(host_pg, tmp_path):
    backup(host_pg, str(tmp_path / "b"))
    result = run_module("restore_drill", dict(host_pg.connection(), path=str(tmp_path / "b"), database="app",
                                              log_dir=str(tmp_path / "logs")))
    assert not result.get("failed"), result.get("msg")
    assert result["passed"] and result["target"].startswith("scratch database stackops_drill_")
    assert host_pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'stackops_drill_%'") == "0"


def test_a_missing_backup_an_unknown_image_and_a_port_in_use_are_clear_errors(host_pg, tmp_path):
    missing = drill(str(tmp_path / "empty"), str(tmp_path / "logs"))
    assert missing["failed"] and "no backup of app found in" in missing["msg"]
    backup(host_pg, str(tmp_path / "b"))
    no_image = drill(str(tmp_path / "b"), str(tmp_path / "logs"), drill_image="stackops-no-such/image:0")
    assert no_image["failed"]
    assert "drill_image stackops-no-such/image:0 is not on this host and could not be pulled" in no_image["msg"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        in_use = drill(str(tmp_path / "b"), str(tmp_path / "logs"), drill_port=port)
    assert in_use["failed"] and "port %d is in use" % port in in_use["msg"]
    assert drill_leftovers() == []


def test_an_s3_key_outside_the_prefix_is_refused(s3, s3_prefix, tmp_path):
    result = run_module("restore_drill", dict(s3=s3.options(s3_prefix), backup="other/app_20261122T030000Z.dump.zst",
                                              database="app", drill_image=postgres_image(),
                                              log_dir=str(tmp_path / "logs")))
    assert result["failed"] and "is outside the prefix" in result["msg"]
    assert drill_leftovers() == []


def test_a_later_drill_removes_what_an_interrupted_one_left(host_pg, tmp_path):
    # what a drill killed mid-way leaves: a labelled container and network whose expiry has passed
    name = "stackops-drill-leftover-test"
    labels = ["--label", DRILL_LABEL + "=true", "--label", DRILL_LABEL + ".expires=1"]
    subprocess.run(["docker", "network", "create"] + labels + [name], check=True, capture_output=True)
    subprocess.run(["docker", "create", "--name", name, "--network", name] + labels + [postgres_image()], check=True,
                   capture_output=True)
    assert len(drill_leftovers()) == 2
    backup(host_pg, str(tmp_path / "b"))
    result = drill(str(tmp_path / "b"), str(tmp_path / "logs"))
    assert not result.get("failed"), result.get("msg")
    assert drill_leftovers() == []


def test_a_drill_of_the_offsite_copy_passes(host_pg, s3, s3_prefix, tmp_path):
    made = backup(host_pg, str(tmp_path / "b"), s3=s3.options(s3_prefix))
    result = run_module("restore_drill", dict(s3=s3.options(s3_prefix), database="app", drill_image=postgres_image(),
                                              log_dir=str(tmp_path / "logs")))
    assert not result.get("failed"), result.get("msg")
    assert result["passed"] and result["backup"] == made["manifest"]["name"]
    markdown, _log = read_log(result)
    assert "| Backup location | %s |" % made["s3_uri"] in markdown
    assert s3.secret_key not in markdown and s3.secret_key not in json.dumps(result)
    assert drill_leftovers() == []
