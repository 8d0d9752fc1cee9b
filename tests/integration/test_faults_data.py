"""Faults that could lose data or leak a secret (the README's fault matrix, rows 1-5 and 13-15, 18): each test
breaks something the way it breaks in production and asserts what is kept, removed and said."""

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import ModuleRun, TableLock, age_backup, exact_counts, fault, run_module, wait_for

LOCK_FILE = ".stackops-runbook.lock"


def database_exists(pg, name):
    return pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '%s'" % name) == "1"


def fresh_database(pg, name, rows):
    pg.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % name)
    pg.psql("postgres", 'CREATE DATABASE "%s"' % name)
    pg.psql(name, "CREATE TABLE keep_me (id int); INSERT INTO keep_me SELECT generate_series(1, %d)" % rows)


class Squatter:
    """Keeps a session connected to a database that may not exist yet, reconnecting whenever it is ended:
    an application or a monitoring agent that finds the scratch database of a restore."""

    def __init__(self, pg, database):
        self.pg, self.database = pg, database
        self.stop = threading.Event()
        self.connected = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            # longer than the 5 s PostgreSQL waits for other sessions before it refuses a rename
            proc = subprocess.run(["psql", "-X", "-q", "-d", self.database, "-c", "SELECT 1", "-c",
                                   "SELECT pg_sleep(30)"], env=self.pg.env(), capture_output=True, check=False)
            if proc.returncode == 0 or b"terminating connection" in proc.stderr:
                self.connected += 1
            else:
                time.sleep(0.01)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


@fault(1, "a session is connected to the restore's scratch database when it takes the target's name",
       "the scratch database is closed to new sessions and its sessions ended; the target is set aside by rename "
       "and dropped only after the restored copy has its name; a failed rename puts it back",
       "the target, restored (or as it was), never neither")
def test_a_session_on_the_scratch_database_never_costs_the_target(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    fresh_database(host_pg, "swap_target", 42)
    with Squatter(host_pg, "swap_target__restoring") as squatter:
        result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                               target_database="swap_target", confirm="swap_target"))
        assert squatter.connected > 0, "the squatter never got into the scratch database"
    assert database_exists(host_pg, "swap_target"), "the target is gone: %s" % result.get("msg")
    assert not result.get("failed"), result["msg"]
    assert exact_counts(host_pg.psql, "swap_target") == made["manifest"]["row_counts"]
    assert not database_exists(host_pg, "swap_target__previous")
    assert host_pg.psql("postgres", "SELECT datallowconn FROM pg_database WHERE datname = 'swap_target'") == "t"


@fault(1, "a restore's scratch copy is left from an earlier run while the target is missing",
       "refuses, naming the leftover and how to rename it back", "the leftover, untouched")
def test_a_leftover_scratch_database_is_never_dropped_while_the_target_is_missing(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS only_copy")
    fresh_database(host_pg, "only_copy__restoring", 7)
    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                           target_database="only_copy"))
    assert result["failed"]
    assert "only_copy__restoring, left by an earlier run" in result["msg"]
    assert 'RENAME TO "only_copy"' in result["msg"]
    assert exact_counts(host_pg.psql, "only_copy__restoring") == {"public.keep_me": 7}
    host_pg.psql("postgres", "DROP DATABASE only_copy__restoring")


@fault(2, "another backup carries a later timestamp (clock skew, a copied file)",
       "the current run's backup is never pruned; future-dated backups are reported, never counted as newer, "
       "never pruned, never the latest", "the new backup and the future-dated one")
def test_retention_keeps_the_new_backup_when_another_is_dated_in_the_future(host_pg, tmp_path, s3, s3_prefix):
    dest = str(tmp_path / "backups")
    first = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
    future = age_backup(dest, first["manifest"]["name"], -30)
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, keep_last=1,
                                          keep_days=0, s3=s3.options(s3_prefix)))
    assert not result.get("failed"), result.get("msg")
    assert os.path.exists(result["path"]) and os.path.exists(result["manifest_path"])
    assert [f["name"] for f in result["future_backups"]] == [future]
    warnings = json.dumps(result.get("warnings"))
    assert future in warnings and "dated in the future" in warnings
    assert os.path.exists(os.path.join(dest, future + ".manifest.json"))
    assert s3.keys(s3_prefix + "/" + result["manifest"]["name"])

    info = run_module("backup_info", dict(path=dest, max_age="26h"))
    assert info["latest"]["globals"]["name"] == result["manifest"]["name"]
    assert info["age_seconds"] >= 0 and [f["name"] for f in info["future_backups"]] == [future]


def test_a_backup_dated_in_the_future_never_makes_a_stale_database_look_fresh(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    old = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
    age_backup(dest, old["manifest"]["name"], 3)
    ahead = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
    age_backup(dest, ahead["manifest"]["name"], -2)
    info = run_module("backup_info", dict(path=dest, max_age="26h"))
    assert info["fresh"] is False and info["stale"] == ["globals"]
    assert info["age_seconds"] > 2 * 86400


@fault(3, "pg_restore tables names a table the archive does not have (or a wrong case)",
       "fails before anything changes, listing the tables the archive has", "the target as it was")
def test_restoring_a_table_the_archive_lacks_fails_naming_the_tables_it_has(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    fresh_database(host_pg, "tables_target", 5)
    for wanted in (["nosuch"], ["Users"], ["public.users", "public.nosuch"]):
        result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                               target_database="tables_target", confirm="tables_target",
                                               tables=wanted))
        assert result["failed"] and not result.get("restored")
        assert "are not in" in result["msg"] and "public.users" in result["msg"]
        assert wanted[-1] in result["msg"].split(" are not in ")[0]
    assert exact_counts(host_pg.psql, "tables_target") == {"public.keep_me": 5}


def secret_files(password):
    """Files under the temporary directory holding ``password``."""
    found = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "stackops-runbook-*", "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                if password.encode() in fh.read():
                    found.append(path)
    return found


@fault(4, "a module holding a database password is killed (SIGKILL, OOM, a lost SSH connection)",
       "the passfile is a memfd read as /dev/fd/N, so it dies with the process; stale secret directories of "
       "dead runs are swept at the next start", "no file with the password")
def test_a_killed_run_leaves_no_passfile_and_stale_ones_are_swept(host_pg, tmp_path):
    stale = tempfile.mkdtemp(prefix="stackops-runbook-999999999-")  # a dead pid's, as a fallback would leave
    with open(os.path.join(stale, "secret"), "w") as fh:
        fh.write("*:*:*:*:%s\n" % host_pg.password)
    dest = str(tmp_path / "backups")
    with TableLock(host_pg, "app", "public.users"):
        run = ModuleRun("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
        wait_for(lambda: os.path.isdir(dest) and any(f.endswith(".partial") for f in os.listdir(dest)))
        assert secret_files(host_pg.password) == [], "a passfile is on disk while the backup runs"
        assert not os.path.exists(stale), "the dead run's secret directory was not swept"
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait()
        os.unlink(run.argsfile.name)
    assert secret_files(host_pg.password) == []


@fault(5, "a short S3 access key id (backup, minio) given as an identifier",
       "access_key is not no_log (only secret_key and session_token are), so results are not masked",
       "paths and s3_uri as they are")
def test_a_short_access_key_id_does_not_mask_paths_in_the_result(host_pg, tmp_path, s3, s3_prefix):
    dest = str(tmp_path / "backups")
    options = dict(s3.options(s3_prefix), access_key="backup")
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, s3=options))
    assert not result.get("failed"), result.get("msg")
    assert "********" not in json.dumps({k: result[k] for k in ("path", "manifest_path", "s3_uri")})
    assert os.path.exists(result["path"]) and result["s3_uri"].startswith("s3://backups/")


def listing(dest):
    return sorted(n for n in os.listdir(dest) if n != LOCK_FILE)


@pytest.fixture
def small_fs(tmp_path):
    """A directory on its own tmpfs, unmounted afterwards."""
    mounted = []

    def mount(options):
        path = str(tmp_path / ("fs%d" % len(mounted)))
        os.makedirs(path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True)
        mounted.append(path)
        return path
    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", path], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@fault(13, "the disk fills up while the manifest is written",
       "fails saying the destination is full while writing the manifest and that the backup was removed",
       "older backups; no data file without its manifest")
def test_a_full_disk_while_writing_the_manifest_fails_clearly_and_keeps_no_orphan(host_pg, small_fs):
    # room for the data but not for one more file: the inodes run out at the manifest's partial file
    dest = small_fs("size=20m,nr_inodes=3,mode=0700")
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
    assert result["failed"]
    assert "the destination is full" in result["msg"] and ".manifest.json" in result["msg"]
    assert "the backup was removed" in result["msg"] and "Traceback" not in result["msg"]
    assert result["msg"].count("older backups are untouched") == 1
    assert listing(dest) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@fault(14, "the backup destination is read-only", "fails at once naming the read-only file system and the fix",
       "older backups, untouched")
def test_a_read_only_destination_fails_clearly_and_touches_nothing(host_pg, small_fs):
    dest = small_fs("size=20m,mode=0700")
    first = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
    os.unlink(os.path.join(dest, LOCK_FILE))
    before = listing(dest)
    subprocess.run(["mount", "-o", "remount,ro", dest], check=True)
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, keep_last=0,
                                          keep_days=0))
    assert result["failed"]
    assert "read-only" in result["msg"] and "older backups are untouched" in result["msg"]
    assert listing(dest) == before and first["manifest"]["name"] + ".manifest.json" in before


@fault(15, "the destination's lock file is a symbolic link to another file",
       "refuses to follow it (O_NOFOLLOW) and says to remove the link", "the link's target, unwritten")
def test_a_symlinked_lock_file_is_never_followed(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    os.makedirs(dest)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.symlink(str(victim), os.path.join(dest, LOCK_FILE))
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
    assert result["failed"] and "is a symbolic link; refusing to follow it" in result["msg"]
    assert victim.read_text() == "precious\n"
    assert listing(dest) == []


@fault(18, "a database name with '..'", "refused by a message that says '..' is not allowed", "nothing written")
def test_a_name_with_two_dots_is_refused_saying_why(host_pg, tmp_path):
    result = run_module("pg_backup", dict(host_pg.connection(), database="x..y", dest=str(tmp_path / "b")))
    assert result["failed"] and "without '..'" in result["msg"]
    assert not os.path.exists(str(tmp_path / "b"))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@fault(18, "the destination fills up during the dump", "says once that the destination is full and what was kept",
       "older backups, untouched")
def test_a_full_destination_says_so_once(host_pg, small_fs):
    dest = small_fs("size=1m,mode=0700")
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, compression="none"))
    assert result["failed"]
    assert result["msg"].count("the destination is full") == 1
    assert result["msg"].count("older backups are untouched") == 1
    shutil.rmtree(dest, ignore_errors=True)
