"""A time parameter that is not ISO 8601 fails naming it, before the module reads or writes anything."""

import os

from conftest import run_module


def test_a_ledger_entry_with_a_started_time_that_is_not_iso_fails_and_writes_nothing(tmp_path):
    ledger = tmp_path / "ledger" / "ledger.jsonl"
    result = run_module("audit_ledger", dict(path=str(ledger), operation="backup", result="succeeded",
                                             started="yesterday"))
    assert result["failed"]
    assert "started='yesterday' is not an ISO 8601 time; pass now() in ISO form" in result["msg"]
    assert not os.path.exists(ledger.parent)


def test_an_import_with_a_taken_at_that_is_not_iso_fails_before_reading_the_file(tmp_path):
    dest = tmp_path / "backups"
    result = run_module("backup_import", dict(src=str(tmp_path / "not-there.sql.gz"), dest=str(dest),
                                              database="app", taken_at="last night"))
    assert result["failed"]
    assert result["msg"] == "taken_at='last night' is not an ISO 8601 time such as 2026-11-21T03:00:00Z"
    assert not os.path.exists(dest)


def test_an_import_takes_its_time_from_taken_at_in_utc(tmp_path):
    src = tmp_path / "app.sql"
    src.write_text("CREATE TABLE t (id int);\n-- PostgreSQL database dump complete\n")
    result = run_module("backup_import", dict(src=str(src), dest=str(tmp_path / "backups"), database="app",
                                              taken_at="2026-11-21T04:00:00+01:00"))
    assert not result.get("failed"), result.get("msg")
    assert result["manifest"]["name"] == "app_20261121T030000Z"
