"""Restore speed: pg_restore and restore_drill against the runbooks' own commands.

On the benchmark database of benchmarks/backup.py (at least 600 MB of realistic rows) it prints the
seconds of:

  (a) the runbooks' `gunzip -c app.sql.gz | psql` into a new database
  (b) raw `pg_restore -j 2` of the directory archive pg_backup wrote (the floor for that archive)
  (c) stackops.runbook.pg_restore of the same archive with jobs=2 (checksum first, scratch database,
      row counts compared with the manifest, rename into place)
  (d) pg_restore (module) of the default archive (custom, zstd: one stream, no parallel jobs)
  (e) a full restore_drill of the directory archive in a throwaway container (jobs=2)

Targets: (c) within 1.15x of (b); the drill's overhead beyond its own restore under 10 seconds.

Usage: python benchmarks/restore.py
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchdb import DATABASE, ROOT, BenchCluster, measure, module_argv  # noqa: E402


def local_postgres_image():
    env_file = os.path.join(ROOT, ".build", "images.env")
    with open(env_file) as fh:
        for line in fh:
            if line.startswith("STACKOPS_POSTGRES_IMAGE="):
                return line.split("=", 1)[1].strip()
    raise SystemExit("run `make images` first")


def main():
    cluster = BenchCluster()
    cluster.start()
    work = tempfile.mkdtemp(prefix="stackops-bench-", dir=os.path.join(ROOT, ".build"))
    modules = os.path.join(ROOT, "plugins", "modules")
    env = cluster.env
    module_env = dict(env, PYTHONPATH=os.path.join(ROOT, ".build", "collections"))
    conn = dict(login_host="127.0.0.1", login_port=cluster.port, login_user="postgres")
    rows = []
    try:
        print("database %r: %.0f MB on disk" % (DATABASE, cluster.size() / 1e6), flush=True)
        plain = os.path.join(work, "app.sql.gz")
        measure("set -o pipefail; pg_dump %s | gzip -1 > %s" % (DATABASE, plain), env=env, shell=True)
        dest = os.path.join(work, "backups")
        dir_backup = json.loads(measure(module_argv(os.path.join(modules, "pg_backup.py"), dict(
            conn, database=DATABASE, dest=dest, format="directory", compression="gzip", jobs=2)), env=module_env)[2])
        custom_backup = json.loads(measure(module_argv(os.path.join(modules, "pg_backup.py"), dict(
            conn, database=DATABASE, dest=dest)), env=module_env)[2])

        def fresh(name):
            cluster.psql("DROP DATABASE IF EXISTS %s" % name, database="postgres")
            cluster.psql("CREATE DATABASE %s" % name, database="postgres")

        fresh("r_a")
        seconds = measure("set -o pipefail; gunzip -c %s | psql -X -q -v ON_ERROR_STOP=1 -d r_a" % plain, env=env,
                          shell=True)[0]
        rows.append(("(a) runbook: gunzip -c | psql", seconds))
        print("  (a) %.1fs" % seconds, flush=True)

        fresh("r_b")
        seconds = measure(["pg_restore", "--exit-on-error", "-j", "2", "-d", "r_b", dir_backup["path"]], env=env)[0]
        rows.append(("(b) raw pg_restore -j 2 of the directory archive", seconds))
        print("  (b) %.1fs" % seconds, flush=True)

        restore_module = os.path.join(modules, "pg_restore.py")
        out = measure(module_argv(restore_module, dict(conn, backup=dir_backup["path"], target_database="r_c",
                                                       jobs=2)), env=module_env)
        result = json.loads(out[2])
        assert not result.get("failed"), result.get("msg")
        rows.append(("(c) pg_restore module, same archive, jobs=2", out[0]))
        print("  (c) %.1fs" % out[0], flush=True)

        out = measure(module_argv(restore_module, dict(conn, backup=custom_backup["path"], target_database="r_d")),
                      env=module_env)
        assert not json.loads(out[2]).get("failed")
        rows.append(("(d) pg_restore module, default archive (custom, zstd)", out[0]))
        print("  (d) %.1fs" % out[0], flush=True)

        out = measure(module_argv(os.path.join(modules, "restore_drill.py"), dict(
            backup=dir_backup["path"], database=DATABASE, drill_image=local_postgres_image(), jobs=2,
            log_dir=os.path.join(work, "drills"))), env=module_env)
        drill = json.loads(out[2])
        assert drill["passed"], drill.get("msg")
        rows.append(("(e) restore_drill, directory archive, jobs=2 (restore part: %.1fs)" % drill["restore_seconds"],
                     out[0]))
        print("  (e) %.1fs" % out[0], flush=True)

        print()
        print("| case | seconds | vs (b) |")
        print("|---|---:|---:|")
        for label, seconds in rows:
            print("| %s | %.1f | %.2fx |" % (label, seconds, seconds / rows[1][1]))
        print()
        print("(c) is %.2fx raw pg_restore -j 2 (target <= 1.15); the drill's overhead beyond its restore is %.1fs "
              "(target < 10s); (a) the runbook takes %.1fx as long as (c)"
              % (rows[2][1] / rows[1][1], drill["duration"] - drill["restore_seconds"], rows[0][1] / rows[2][1]))
        for name in ("r_a", "r_b", "r_c", "r_d"):
            cluster.psql("DROP DATABASE IF EXISTS %s" % name, database="postgres")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        cluster.stop()


if __name__ == "__main__":
    main()
