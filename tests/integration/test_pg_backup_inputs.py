"""Bad input gets a clear error naming the parameter, with nothing written; check mode writes
nothing; the password never shows in a command line."""

import os
import tempfile
import threading

import pytest

from conftest import ModuleRun, TableLock, pids_of, run_module, wait_for


def secret_dirs():
    return {d for d in os.listdir(tempfile.gettempdir()) if d.startswith("stackops-runbook-")}


def left_behind(before):
    """Secret directories that appeared since ``before`` and whose run is over (CI runs other suites at the same
    time: a directory of a run still going is theirs, not a leftover)."""
    def over(name):
        owner = name[len("stackops-runbook-"):].split("-", 1)[0]
        return not (owner.isdigit() and os.path.exists("/proc/" + owner))
    return {d for d in secret_dirs() - before if over(d)}


@pytest.mark.parametrize("args,message", [
    (dict(format="tar"), "value of format must be one of: custom, plain, directory, got: tar"),
    (dict(compression="lz4"), "value of compression must be one of: zstd, gzip, none, got: lz4"),
    (dict(database="../etc"), "database='../etc' cannot be used"),
    (dict(database="app; rm -rf /"), "database='app; rm -rf /' cannot be used"),
    (dict(database="a/b"), "no path separators or shell characters"),
    (dict(keep_days=-1), "keep_days=-1 cannot be negative"),
    (dict(keep_last=-3), "keep_last=-3 cannot be negative"),
    (dict(jobs=2), "jobs=2 needs format=directory"),
    (dict(format="directory", jobs=0), "jobs=0 must be 1 or more"),
    (dict(compression="gzip", compression_level=12), "compression_level=12 is out of range for gzip: use 1 to 9"),
    (dict(compression="none", compression_level=3), "compression_level=3 has no meaning with compression=none"),
    (dict(all_databases=True), "set exactly one of database, all_databases and globals_only"),
    (dict(database=None), "set exactly one of database, all_databases and globals_only (got: none)"),
    (dict(s3=dict(bucket="b", prefix="x/../y")), "s3.prefix='x/../y' must not contain '..'"),
    (dict(dest="relative/dir"), "dest='relative/dir' must be an absolute path"),
])
def test_bad_input_is_refused_naming_the_parameter_and_nothing_is_written(host_pg, tmp_path, args, message):
    dest = str(tmp_path / "backups")
    full = dict(host_pg.connection(), database="app", dest=dest)
    full.update(args)
    if full["database"] is None:
        del full["database"]
    result = run_module("pg_backup", full)
    assert result["failed"]
    assert message in result["msg"]
    assert not os.path.exists(dest)


def test_a_container_that_does_not_exist_is_named_in_the_error(tmp_path):
    dest = str(tmp_path / "backups")
    secret_dirs_before = secret_dirs()
    result = run_module("pg_backup", dict(container="no-such-container-42", database="app", dest=dest))
    assert result["failed"]
    assert "container 'no-such-container-42' does not exist" in result["msg"]
    assert not os.path.exists(dest)
    assert left_behind(secret_dirs_before) == set()


def test_check_mode_reports_the_path_and_what_would_be_pruned_and_writes_nothing(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    first = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    second = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    before = sorted(os.listdir(dest))
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, keep_last=2),
                        check_mode=True)
    assert result["changed"] is True
    assert result["path"].startswith(os.path.join(dest, "app_")) and result["path"].endswith(".dump.zst")
    assert [p["name"] for p in result["pruned"]] == [first["manifest"]["name"]]
    assert sorted(os.listdir(dest)) == before
    assert second["manifest"]["name"] not in [p["name"] for p in result["pruned"]]


def test_check_mode_with_a_missing_destination_creates_nothing(host_pg, tmp_path):
    dest = str(tmp_path / "not-yet")
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest), check_mode=True)
    assert result["changed"] is True and result["pruned"] == []
    assert not os.path.exists(dest)


def test_the_password_never_appears_in_any_command_line_during_a_dump(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    seen = []
    stop = threading.Event()
    secret_dirs_before = secret_dirs()

    def watch():
        while not stop.is_set():
            seen.extend(cmd for _pid, cmd in pids_of(""))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with TableLock(host_pg, "app", "public.orders") as lock:
            run = ModuleRun("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
            # pg_dump is in flight (blocked on the lock) while the watcher reads every /proc/*/cmdline
            wait_for(lambda: any("pg_dump --no-password" in cmd for cmd in seen))
            lock.release()
            result = run.result()
    finally:
        stop.set()
        watcher.join()
    assert not result.get("failed"), result.get("msg")
    assert any("pg_dump" in cmd for cmd in seen) and any("psql" in cmd for cmd in seen)
    assert not [cmd for cmd in seen if host_pg.password in cmd]
    # nor is it left behind in a passfile
    assert left_behind(secret_dirs_before) == set()
