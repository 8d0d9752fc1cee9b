"""Which client program runs: Debian's pg_wrapper is passed over where its pick is known."""

import os
import stat

from ansible_collections.stackops.runbook.plugins.module_utils import _runner
from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner, pg_wrapper_pick


def program(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\n" + text + "\n")
    os.chmod(path, stat.S_IRWXU)
    return path


def binroot(tmp_path, versions):
    root = tmp_path / "lib-postgresql"
    for version, programs in versions.items():
        os.makedirs(root / version / "bin", exist_ok=True)
        for name in programs:
            program(str(root / version / "bin" / name), 'echo "%s $PGSYSCONFDIR $*"' % version)
    return str(root)


def test_with_a_host_the_newest_version_that_has_the_program_is_picked(tmp_path):
    root = binroot(tmp_path, {"9.6": ["pg_restore", "psql"], "13": ["pg_restore", "psql"], "15": ["pg_restore"],
                              "16": ["psql"], "17.old": ["pg_restore"]})
    host = {"PGHOST": "db.example"}
    assert pg_wrapper_pick("pg_restore", host, root) == os.path.join(root, "15", "bin", "pg_restore")
    assert pg_wrapper_pick("psql", host, root) == os.path.join(root, "16", "bin", "psql")
    assert pg_wrapper_pick("pg_dump", host, root) is None


def test_without_a_host_or_for_an_old_psql_the_pick_is_left_to_pg_wrapper(tmp_path):
    root = binroot(tmp_path, {"12": ["pg_restore", "psql"]})
    assert pg_wrapper_pick("pg_restore", {"PGPORT": "5433"}, root) is None  # a local cluster may decide
    assert pg_wrapper_pick("psql", {"PGHOST": "db.example"}, root) is None  # runs with readline preloaded
    old = os.path.join(root, "12", "bin", "pg_restore")
    assert pg_wrapper_pick("pg_restore", {"PGHOST": "db.example"}, root) == old
    assert pg_wrapper_pick("pg_restore", {"PGHOST": "db.example"}, str(tmp_path / "none")) is None


def test_a_runner_starts_the_program_pg_wrapper_would_and_only_that_one(tmp_path, monkeypatch):
    root = binroot(tmp_path, {"14": ["pg_restore"], "15": ["pg_restore"]})
    monkeypatch.setattr(_runner, "PG_BINROOT", root)
    wrapper = program(str(tmp_path / "share" / "pg_wrapper"), 'echo "wrapper $*"')
    path = tmp_path / "bin"
    path.mkdir()
    os.symlink(wrapper, str(path / "pg_restore"))
    program(str(path / "zstd"), 'echo "not wrapped $*"')
    env = {"PATH": str(path), "PGHOST": "127.0.0.1"}

    runner = LocalRunner(env=env)
    assert runner.run(["pg_restore", "--list"])[1] == ("15 /etc/postgresql-common --list\n").encode()
    assert runner.run(["zstd", "-d"])[1] == b"not wrapped -d\n"
    runner = LocalRunner(env=dict(env, PGSYSCONFDIR="/etc/mine"))
    assert runner.run(["pg_restore"])[1] == b"15 /etc/mine \n"

    without_host = LocalRunner(env={"PATH": str(path)})
    assert without_host.run(["pg_restore", "--list"])[1] == b"wrapper --list\n"
    with_bin_dir = LocalRunner(env=env, bin_dir=os.path.join(root, "14", "bin"))
    assert with_bin_dir.run(["pg_restore"])[1].startswith(b"14 ")
