"""Faults: each ends with a clear failure (or the right success), no partial file that looks
complete, older backups untouched and the lock released."""

import datetime
import fcntl
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import (
    ModuleRun,
    TableLock,
    age_backup,
    descends_from,
    free_port,
    inside_container,
    pids_of,
    run_module,
    wait_for,
)

LOCK_FILE = ".stackops-runbook.lock"


def listing(dest):
    """The files in dest with their content's fingerprint (size and mtime)."""
    out = {}
    for name in sorted(os.listdir(dest)):
        if name == LOCK_FILE:
            continue
        st = os.stat(os.path.join(dest, name))
        out[name] = (st.st_size, st.st_mtime_ns)
    return out


def older_backup(pg_args, dest):
    """A first, good backup that later failures must leave alone."""
    result = run_module("pg_backup", dict(pg_args, globals_only=True, dest=dest))
    assert not result.get("failed"), result.get("msg")
    return listing(dest)


def writing_partial(dest):
    return os.path.isdir(dest) and any(f.endswith(".partial") for f in os.listdir(dest))


def assert_lock_released(dest):
    fd = os.open(os.path.join(dest, LOCK_FILE), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def dump_pid(owner):
    """The pid of this test's pg_dump (also inside a container: the host sees every process), ``owner`` saying
    which is this test's."""
    found = pids_of("pg_dump --no-password", owner)
    return found[0][0] if found else None


def test_pg_dump_killed_mid_dump_fails_and_keeps_nothing(host_pg, dest):
    before = older_backup(host_pg.connection(), dest)
    with TableLock(host_pg, "app", "public.users"):
        run = ModuleRun("pg_backup", dict(host_pg.connection(), database="app", dest=dest, format="plain"))
        pid = wait_for(lambda: dump_pid(descends_from(run.proc.pid)))
        # it has started writing its partial file, and blocks on the locked table
        wait_for(lambda: writing_partial(dest))
        os.kill(pid, signal.SIGKILL)
        result = run.result()
    assert result["failed"]
    assert "pg_dump was killed by signal 9" in result["msg"]
    assert "older backups are untouched" in result["msg"]
    assert listing(dest) == before
    assert_lock_released(dest)


def test_pg_dump_killed_inside_the_container_fails_and_keeps_nothing(container_pg, dest):
    before = older_backup(dict(container=container_pg.name), dest)
    lock = subprocess.Popen(["docker", "exec", "-i", container_pg.name, "psql", "-X", "-q", "-U", "postgres", "-d",
                             "app"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lock.stdin.write("BEGIN;\nLOCK TABLE public.users IN ACCESS EXCLUSIVE MODE;\n\\echo locked\n")
    lock.stdin.flush()
    assert lock.stdout.readline().strip() == "locked"
    try:
        run = ModuleRun("pg_backup", dict(container=container_pg.name, database="app", dest=dest))
        wait_for(lambda: writing_partial(dest))
        wait_for(lambda: container_pg.psql("app", "SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                                  "= 'stackops.runbook' AND wait_event_type = 'Lock'") == "1")
        os.kill(wait_for(lambda: dump_pid(inside_container(container_pg.name))), signal.SIGKILL)
        result = run.result()
    finally:
        lock.stdin.write("ROLLBACK;\n\\q\n")
        lock.stdin.close()
        lock.wait(timeout=30)
    assert result["failed"]
    assert "pg_dump exited with code 137" in result["msg"]
    assert listing(dest) == before
    assert_lock_released(dest)


def test_an_unreachable_database_fails_with_the_connection_error(host_pg, dest):
    before = older_backup(host_pg.connection(), dest)
    result = run_module("pg_backup", dict(host_pg.connection(), login_port=free_port(), database="app", dest=dest))
    assert result["failed"]
    assert "Connection refused" in result["msg"] and "psql" in result["msg"]
    assert listing(dest) == before
    assert_lock_released(dest)


def test_a_wrong_password_fails_saying_so(host_pg, dest):
    before = older_backup(host_pg.connection(), dest)
    result = run_module("pg_backup", dict(host_pg.connection(), login_password="not-the-password", database="app",
                                          dest=dest))
    assert result["failed"]
    assert 'password authentication failed for user "postgres"' in result["msg"]
    assert listing(dest) == before


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_destination_fails_and_leaves_no_partial_file(host_pg, tmp_path):
    dest = str(tmp_path / "small")
    os.makedirs(dest)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dest], check=True)
    try:
        before = older_backup(host_pg.connection(), dest)
        result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, compression="none"))
        assert result["failed"]
        assert "the destination is full (No space left on device)" in result["msg"]
        assert listing(dest) == before
        assert_lock_released(dest)
        # and once there is room again, the same run succeeds
        again = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
        assert not again.get("failed"), again.get("msg")
    finally:
        subprocess.run(["umount", dest], check=True)


def test_an_unreachable_s3_fails_but_keeps_the_verified_local_backup(host_pg, dest):
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest,
                                          s3=dict(bucket="backups", endpoint_url="http://127.0.0.1:%d" % free_port(),
                                                  access_key="test-access-key-id", secret_key="test-secret-key-x",
                                                  region="us-east-1", max_attempts=2)))
    assert result["failed"]
    assert "offsite copy failed" in result["msg"] and "cannot reach the S3 endpoint" in result["msg"]
    names = sorted(n for n in os.listdir(dest) if n != LOCK_FILE)
    assert len(names) == 2
    data = [n for n in names if n.endswith(".dump.zst")][0]
    assert "The local backup is complete and verified at %s" % os.path.join(dest, data) in result["msg"]
    with open(os.path.join(dest, names[1 - names.index(data)])) as fh:
        assert json.load(fh)["verified"] is True


def test_a_second_run_at_once_fails_at_once_and_the_first_completes(host_pg, dest):
    with TableLock(host_pg, "app", "public.users") as lock:
        first = ModuleRun("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
        wait_for(lambda: writing_partial(dest))
        started = time.monotonic()
        second = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
        assert time.monotonic() - started < 10
        lock.release()
        first_result = first.result()
    assert second["failed"]
    assert "another backup run holds the lock on %s" % dest in second["msg"]
    assert "set lock_timeout" in second["msg"]
    assert not first_result.get("failed"), first_result.get("msg")
    assert sorted(os.listdir(dest)) == sorted([LOCK_FILE, os.path.basename(first_result["path"]),
                                               os.path.basename(first_result["manifest_path"])])


def test_a_second_run_with_lock_timeout_waits_for_the_first(host_pg, dest):
    with TableLock(host_pg, "app", "public.users") as lock:
        first = ModuleRun("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
        wait_for(lambda: writing_partial(dest))
        second = ModuleRun("pg_backup", dict(host_pg.connection(), database="app", dest=dest, lock_timeout=60))
        time.sleep(1.5)
        assert second.proc.poll() is None  # still waiting for the lock
        lock.release()
        results = [first.result(), second.result()]
    assert [r.get("failed") for r in results] == [None, None]
    assert results[0]["path"] != results[1]["path"]


def expired_backups(pg_args, dest, ages=(10, 20, 30)):
    names = []
    for days in ages:
        result = run_module("pg_backup", dict(pg_args, globals_only=True, dest=dest))
        names.append(age_backup(dest, result["manifest"]["name"], days))
    return names


def test_only_expired_backups_are_pruned_after_a_new_one_succeeds(host_pg, dest):
    old = expired_backups(host_pg.connection(), dest)
    # files that are not ours stay, whatever their names
    for foreign in ("globals_20200101T000000Z.sql.zst", "notes.txt"):
        open(os.path.join(dest, foreign), "w").close()
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, keep_days=7))
    assert not result.get("failed"), result.get("msg")
    assert sorted(p["name"] for p in result["pruned"]) == sorted(old)
    assert all("older than 7 days" in p["reason"] for p in result["pruned"])
    left = sorted(n for n in os.listdir(dest) if n != LOCK_FILE)
    assert left == sorted(["globals_20200101T000000Z.sql.zst", "notes.txt", os.path.basename(result["path"]),
                           os.path.basename(result["manifest_path"])])


def test_grandfather_father_son_keeps_the_newest_of_each_month_and_says_why(host_pg, dest):
    # backups of the 20th and the 10th of last month and of the 15th of the month before: last month's newest is
    # the 20th's, so the 10th's goes
    today = datetime.datetime.now(datetime.timezone.utc)
    last_month = (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=20)
    month_before = (last_month.replace(day=1) - datetime.timedelta(days=1)).replace(day=15)
    dates = (last_month, last_month.replace(day=10), month_before)
    old = expired_backups(host_pg.connection(), dest, ages=[(today - d).days for d in dates])
    args = dict(host_pg.connection(), globals_only=True, dest=dest, keep_days=7, keep_monthly=3)
    plan = run_module("pg_backup", args, check_mode=True)
    assert not plan.get("failed"), plan.get("msg")
    assert [p["name"] for p in plan["pruned"]] == [old[1]]
    assert "not the newest of one of the 3 newest months" in plan["pruned"][0]["reason"]
    kept_by = {r["name"]: r["kept_by"] for r in plan["retained"]}
    assert set(kept_by) == {os.path.basename(plan["path"]).split(".")[0], old[0], old[2]}
    assert any(why.startswith("keep_monthly: the newest of month") for why in kept_by[old[2]])
    result = run_module("pg_backup", args)
    assert [p["name"] for p in result["pruned"]] == [old[1]] and len(result["retained"]) == 3


def test_a_failed_run_prunes_nothing_even_when_every_backup_is_expired(host_pg, dest):
    expired_backups(host_pg.connection(), dest)
    before = listing(dest)
    result = run_module("pg_backup", dict(host_pg.connection(), login_password="wrong-password", globals_only=True,
                                          dest=dest, keep_days=7))
    assert result["failed"]
    assert listing(dest) == before


def test_keep_last_keeps_the_newest_even_when_expired(host_pg, dest):
    old = expired_backups(host_pg.connection(), dest)
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, keep_days=7,
                                          keep_last=2))
    # kept: the new one and the newest expired one (10 days); pruned: 20 and 30 days
    assert sorted(p["name"] for p in result["pruned"]) == sorted(old[1:])


def test_stale_partial_files_of_a_dead_run_are_removed_under_the_lock(host_pg, dest):
    older_backup(host_pg.connection(), dest)
    stale = os.path.join(dest, "app_20261101T030000Z.dump.zst.partial")
    with open(stale, "wb") as fh:
        fh.write(b"half a dump")
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    assert not result.get("failed"), result.get("msg")
    assert result["removed_partials"] == [stale]
    assert not os.path.exists(stale)


def test_runs_that_waited_for_the_lock_never_reuse_a_name(host_pg, dest):
    os.makedirs(dest)
    fd = os.open(os.path.join(dest, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        runs = [ModuleRun("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, lock_timeout=60))
                for _run in range(3)]
        time.sleep(1.0)
    finally:
        os.close(fd)  # all three were waiting; they now go one after the other, within a second or two
    results = [run.result() for run in runs]
    assert [r.get("failed") for r in results] == [None, None, None]
    names = {r["manifest"]["name"] for r in results}
    assert len(names) == 3
    assert all(os.path.exists(r["path"]) and os.path.exists(r["manifest_path"]) for r in results)
