"""pg_restore: a full restore replaces a database and the row counts match; it refuses without the
right confirm, with live sessions, or on a checksum mismatch, each leaving the target untouched."""

import json
import os
import subprocess
import time

import pytest

from conftest import TableLock, container_tmp, exact_counts, run_module


@pytest.fixture
def backup(host_pg, tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("restore") / "backups")
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    assert not result.get("failed"), result.get("msg")
    return result


def target_with_one_table(pg, name):
    pg.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % name)
    pg.psql("postgres", 'CREATE DATABASE "%s"' % name)
    pg.psql(name, "CREATE TABLE keep_me (id int); INSERT INTO keep_me SELECT generate_series(1, 42)")


@pytest.mark.parametrize("fmt", ["custom", "plain", "directory"])
def test_a_full_restore_replaces_the_database_and_the_counts_match(host_pg, tmp_path, fmt):
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, format=fmt))
    target_with_one_table(host_pg, "app_copy")
    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                           target_database="app_copy", confirm="app_copy", jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert result["restored"] and result["replaced"] and result["differences"] == {}
    assert result["backup"] == made["manifest"]["name"]
    assert exact_counts(host_pg.psql, "app_copy") == made["manifest"]["row_counts"] == result["row_counts"]
    assert host_pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'app_copy%'") == "1"


def test_a_new_database_is_created_from_a_backup_file_path(host_pg, backup):
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS app_new")
    result = run_module("pg_restore", dict(host_pg.connection(), backup=backup["path"], target_database="app_new"))
    assert not result.get("failed"), result.get("msg")
    assert result["replaced"] is False
    assert exact_counts(host_pg.psql, "app_new") == backup["manifest"]["row_counts"]


def test_replacing_without_the_right_confirm_is_refused_and_the_target_untouched(host_pg, backup):
    target_with_one_table(host_pg, "app_live")
    for confirm in (None, "app"):
        args = dict(host_pg.connection(), backup=backup["path"], target_database="app_live")
        if confirm:
            args["confirm"] = confirm
        result = run_module("pg_restore", args)
        assert result["failed"]
        assert "app_live exists; restoring %s replaces it. Set confirm: app_live" % backup["manifest"]["name"] in \
            result["msg"]
    assert exact_counts(host_pg.psql, "app_live") == {"public.keep_me": 42}


def test_a_target_with_live_sessions_is_refused_unless_told_to_terminate(host_pg, backup):
    target_with_one_table(host_pg, "app_busy")
    with TableLock(host_pg, "app_busy"):
        refused = run_module("pg_restore", dict(host_pg.connection(), backup=backup["path"],
                                                target_database="app_busy", confirm="app_busy"))
        assert refused["failed"]
        assert "1 other session(s) are connected to app_busy" in refused["msg"]
        assert "terminate_connections: true" in refused["msg"]
        assert refused["sessions"][0]["user"] == "postgres"
        assert exact_counts(host_pg.psql, "app_busy") == {"public.keep_me": 42}
        forced = run_module("pg_restore", dict(host_pg.connection(), backup=backup["path"],
                                               target_database="app_busy", confirm="app_busy",
                                               terminate_connections=True))
    assert not forced.get("failed"), forced.get("msg")
    assert exact_counts(host_pg.psql, "app_busy") == backup["manifest"]["row_counts"]


def test_a_checksum_mismatch_stops_before_anything_changes(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    with open(made["path"], "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    target_with_one_table(host_pg, "app_safe")
    result = run_module("pg_restore", dict(host_pg.connection(), path=dest, database="app",
                                           target_database="app_safe", confirm="app_safe"))
    assert result["failed"]
    assert "the backup does not match its manifest, so nothing was changed" in result["msg"]
    assert exact_counts(host_pg.psql, "app_safe") == {"public.keep_me": 42}


def test_one_table_is_restored_from_a_custom_archive(host_pg, backup):
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS app_tables")
    run_module("pg_restore", dict(host_pg.connection(), backup=backup["path"], target_database="app_tables"))
    host_pg.psql("app_tables", "DELETE FROM audit_log WHERE id % 2 = 0")
    result = run_module("pg_restore", dict(host_pg.connection(), backup=backup["path"], target_database="app_tables",
                                           confirm="app_tables", tables=["public.audit_log"]))
    assert not result.get("failed"), result.get("msg")
    assert result["row_counts"] == {"public.audit_log": backup["manifest"]["row_counts"]["public.audit_log"]}
    assert exact_counts(host_pg.psql, "app_tables") == backup["manifest"]["row_counts"]


def test_restore_from_s3_inside_a_container(container_pg, s3, s3_prefix, tmp_path):
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(container=container_pg.name, database="app", dest=dest,
                                        s3=s3.options(s3_prefix)))
    assert not made.get("failed"), made.get("msg")
    container_pg.psql("postgres", "DROP DATABASE IF EXISTS app_from_s3")
    result = run_module("pg_restore", dict(container=container_pg.name, s3=s3.options(s3_prefix), database="app",
                                           target_database="app_from_s3"))
    assert not result.get("failed"), result.get("msg")
    assert exact_counts(container_pg.psql, "app_from_s3") == made["manifest"]["row_counts"]
    # the default backup (custom, zstd) went in with parallel jobs, read frame by frame; the scratch directory
    # (its table of contents and lists) in the container's /tmp is gone afterwards
    assert result["jobs"] > 1 and not result.get("warnings")
    assert "stackops-restore" not in subprocess.run(["docker", "exec", container_pg.name, "ls", "-a", "/tmp"],
                                                    capture_output=True, text=True, check=True).stdout


def test_an_s3_key_outside_the_prefix_and_a_missing_backup_are_refused(host_pg, s3, s3_prefix, tmp_path):
    outside = run_module("pg_restore", dict(host_pg.connection(), s3=s3.options(s3_prefix),
                                            backup="elsewhere/app_20261122T030000Z.dump.zst", target_database="x1"))
    assert outside["failed"] and "is outside the prefix" in outside["msg"]
    missing = run_module("pg_restore", dict(host_pg.connection(), path=str(tmp_path), database="app",
                                            target_database="x1"))
    assert missing["failed"] and "no backup of app found in %s" % tmp_path in missing["msg"]
    assert host_pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'x1%'") == "0"
    assert os.listdir(tmp_path) == []


def test_a_directory_backup_is_restored_inside_a_container_and_so_are_single_tables(container_pg, tmp_path):
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(container=container_pg.name, database="app", dest=dest, format="directory",
                                        jobs=2))
    assert not made.get("failed"), made.get("msg")
    container_pg.psql("postgres", "DROP DATABASE IF EXISTS app_from_dir")
    result = run_module("pg_restore", dict(container=container_pg.name, path=dest, database="app",
                                           target_database="app_from_dir", jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert exact_counts(container_pg.psql, "app_from_dir") == made["manifest"]["row_counts"]
    container_pg.psql("app_from_dir", "DELETE FROM audit_log")
    tables = run_module("pg_restore", dict(container=container_pg.name, path=dest, database="app",
                                           target_database="app_from_dir", confirm="app_from_dir",
                                           tables=["audit_log"]))
    assert not tables.get("failed"), tables.get("msg")
    assert exact_counts(container_pg.psql, "app_from_dir") == made["manifest"]["row_counts"]


def test_the_default_backup_is_restored_with_parallel_jobs_and_its_seekable_copy_removed(host_pg, backup, tmp_path,
                                                                                         monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS app_parallel")
    result = run_module("pg_restore", dict(host_pg.connection(), backup=backup["path"], target_database="app_parallel",
                                           jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert backup["manifest"]["format"] == "custom" and backup["manifest"]["compression"] == "zstd"
    assert result["jobs"] == 2 and not result.get("warnings")
    assert exact_counts(host_pg.psql, "app_parallel") == backup["manifest"]["row_counts"]
    assert os.listdir(scratch) == []


def test_without_room_for_a_seekable_copy_the_default_backup_is_restored_as_one_stream(host_pg, tmp_path):
    dest = tmp_path / "backups"
    made = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=str(dest)))
    assert not made.get("failed"), made.get("msg")
    with open(made["manifest_path"]) as fh:
        manifest = json.load(fh)
    # a backup written before backups were framed (0.1.x): a parallel restore needs a seekable copy of it
    assert manifest.pop("layout")["blocks"]
    manifest["uncompressed_size"] = 10 ** 15  # a petabyte: no temporary directory has room for that copy
    with open(made["manifest_path"], "w") as fh:
        json.dump(manifest, fh)
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS app_stream")
    result = run_module("pg_restore", dict(host_pg.connection(), backup=made["path"], target_database="app_stream",
                                           jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert result["jobs"] == 1, result
    warnings = json.dumps(result["warnings"])
    assert "no room for a seekable copy of %s" % manifest["name"] in warnings and "as one stream" in warnings
    assert exact_counts(host_pg.psql, "app_stream") == made["manifest"]["row_counts"]


def test_a_directory_backup_is_restored_inside_a_container_as_its_container_user(container_pg, tmp_path):
    # the copy into the container is unpacked by the engine as root; our files are 0600 in 0700 directories, so
    # they must belong to the user pg_restore runs as there
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(container=container_pg.name, container_user="postgres", database="app",
                                        dest=dest, format="directory", compression="none"))
    assert not made.get("failed"), made.get("msg")
    container_pg.psql("postgres", "DROP DATABASE IF EXISTS app_as_postgres")
    result = run_module("pg_restore", dict(container=container_pg.name, container_user="postgres", path=dest,
                                           database="app", target_database="app_as_postgres", jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert exact_counts(container_pg.psql, "app_as_postgres") == made["manifest"]["row_counts"]


def archive_copies_by_the_engine(container, since):
    """The docker engine's archive API calls (``put_archive``) into ``container`` since ``since``."""
    return subprocess.run(["docker", "events", "--since", "%.3f" % since, "--until", "%.3f" % time.time(),
                           "--filter", "container=%s" % container, "--filter", "event=extract-to-dir",
                           "--format", "{{.Action}}"], capture_output=True, text=True, check=True).stdout.split()


def test_a_directory_backup_goes_into_a_container_by_the_kernel_not_the_engine_and_nothing_stays(
        container_pg, tmp_path):
    """Where this host reaches the container's filesystem, a directory backup's files are copied straight into
    the restore's scratch directory, owned by the container's user, not sent to the engine as a tar; the
    directory is gone afterwards. Where it does not, the engine's archive API still carries them."""
    import docker

    from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerRunner
    from ansible_collections.stackops.runbook.plugins.module_utils._restore import RestoreScratch

    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(container=container_pg.name, database="app", dest=dest, format="directory",
                                        compression="none"))
    assert not made.get("failed"), made.get("msg")
    before = container_tmp(container_pg)
    container_pg.psql("postgres", "DROP DATABASE IF EXISTS app_by_kernel")
    since = time.time()
    result = run_module("pg_restore", dict(container=container_pg.name, container_user="postgres", path=dest,
                                           database="app", target_database="app_by_kernel", jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert exact_counts(container_pg.psql, "app_by_kernel") == made["manifest"]["row_counts"]
    assert archive_copies_by_the_engine(container_pg.name, since) == []
    assert container_tmp(container_pg) == before

    runner = ContainerRunner(docker.from_env(), container_pg.name, user="postgres")
    scratch = RestoreScratch(runner)
    scratch.pipes = None  # as from a remote engine, or from this module in a container
    since = time.time()
    try:
        inside = scratch.put_directory(made["path"])
        rc, out, err = runner.run(["pg_restore", "--list", inside])
        assert rc == 0 and b"TABLE DATA public audit_log" in out, err
    finally:
        scratch.remove()
    assert archive_copies_by_the_engine(container_pg.name, since) == ["extract-to-dir"]
    assert container_tmp(container_pg) == before


def test_an_existing_target_without_confirm_is_refused_before_the_backup_is_read(host_pg, backup):
    # a damaged backup would be reported if it were read (and copied for the parallel restore) first
    with open(backup["path"], "r+b") as fh:
        fh.seek(backup["size"] // 2)
        fh.write(b"\0" * 64)
    target_with_one_table(host_pg, "app_unconfirmed")
    result = run_module("pg_restore", dict(host_pg.connection(), path=os.path.dirname(backup["path"]), database="app",
                                           target_database="app_unconfirmed", jobs=2))
    assert result.get("failed") and "Set confirm: app_unconfirmed" in result["msg"], result.get("msg")
    assert host_pg.psql("app_unconfirmed", "SELECT count(*) FROM keep_me") == "42"
    host_pg.psql("postgres", 'DROP DATABASE "app_unconfirmed"')


def test_row_counts_are_taken_on_the_admin_session_and_it_comes_back(host_pg):
    """pg_restore counts the restored rows on its one admin session (no psql of its own): connected to the
    database whatever its name, and back to the maintenance database for the swap that follows."""
    from ansible_collections.stackops.runbook.plugins.module_utils._restore import Admin
    from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner

    name = "it's-a \\ db"
    host_pg.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % name)
    host_pg.psql("postgres", 'CREATE DATABASE "%s"' % name)
    host_pg.psql(name, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 3)")
    admin = Admin(LocalRunner(env=host_pg.env()))
    try:
        pid = admin.session.scalar("SELECT pg_backend_pid();")
        assert admin.row_counts(name) == {"public.t": 3}
        assert admin.session.scalar("SELECT current_database();") == "postgres"
        assert admin.session.scalar("SELECT pg_backend_pid();") != pid  # it did reconnect, twice
        with pytest.raises(Exception):
            admin.row_counts("no_such_database")
    finally:
        admin.close()
    host_pg.psql("postgres", 'DROP DATABASE "%s"' % name)
