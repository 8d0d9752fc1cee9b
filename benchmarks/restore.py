"""Restore speed and memory: pg_restore and restore_drill against raw pg_restore and the runbooks' commands.

On the benchmark database of benchmarks/backup.py (1.16 GB of realistic rows, see _benchdb.py) it prints the
seconds and peak RSS (the largest process of each run: the module, or pg_restore/psql when they run on this
host) of:

  on this host (the cluster of _benchdb.py)
  (a) the runbooks' `gunzip -c app.sql.gz | psql` into a new database
  (b) raw `pg_restore -j 2` of a directory archive: the floor
  (c) stackops.runbook.pg_restore of that directory archive, jobs=2 (checksums first, scratch database,
      row counts compared with the manifest, rename into place)
  (d) pg_restore (module) of the default backup (custom, zstd), default options
  in a PostgreSQL container (docker exec, as with a compose stack's postgres service)
  (e) raw `pg_restore -j 2` inside the container of the directory archive already copied there: the floor
  (f) pg_restore (module) of the directory archive - uncompressed, over 1 GB - streamed into the container
  (g) pg_restore (module) of the default backup into the container, default options
  (h) restore_drill of the default backup in a throwaway container, default options

Targets: (d) within 1.15x of (b); (g) within 1.15x of (e); peak RSS under 100 MB for every module; the drill's
overhead beyond its own restore under 5 seconds.

The disk and CPUs of a shared VM make single runs vary by a quarter: --repeat N runs each case N times (into a
fresh database each time), in rounds (every host case, then every container case, N times). Each case's fastest
run is compared with its floor's fastest ("fastest"), and each run with its floor's run of the same round, the
median of those ratios taken ("paired": a slow spell of the machine slows a round's floor and its cases alike,
where the fastest of each may come from different spells). Both are printed, with the CPU-seconds the whole
machine spent on each case (median), every process counted (the server, dockerd, the programs in a container).

Usage: python benchmarks/restore.py [--repeat N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchdb import DATABASE, ROOT, BenchCluster, busy_seconds, module_argv, size_of  # noqa: E402
from _benchdb import measure as measure_once  # noqa: E402


def local_postgres_image():
    env_file = os.path.join(ROOT, ".build", "images.env")
    with open(env_file) as fh:
        for line in fh:
            if line.startswith("STACKOPS_POSTGRES_IMAGE="):
                return line.split("=", 1)[1].strip()
    raise SystemExit("run `make images` first")


class BenchContainer:
    """A PostgreSQL container like a compose stack's postgres service (trust inside, no published port)."""

    def __init__(self):
        self.name = "stackops-bench-pg-%s" % uuid.uuid4().hex[:8]
        subprocess.run(["docker", "run", "-d", "--name", self.name, "-e", "POSTGRES_HOST_AUTH_METHOD=trust",
                        local_postgres_image()], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while self.exec(["pg_isready", "-h", "127.0.0.1", "-U", "postgres"], check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the benchmark's postgres container did not start")
            time.sleep(0.5)

    def exec(self, argv, check=True):
        return subprocess.run(["docker", "exec", "-u", "postgres", self.name] + argv, capture_output=True,
                              check=check)

    def fresh(self, name):
        self.exec(["psql", "-X", "-q", "-c", "DROP DATABASE IF EXISTS %s" % name])
        self.exec(["psql", "-X", "-q", "-c", "CREATE DATABASE %s" % name])

    def remove(self):
        subprocess.run(["docker", "rm", "-f", "-v", self.name], capture_output=True, check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; the fastest counts")
    repeat = parser.parse_args().repeat
    cluster = BenchCluster()
    cluster.start()
    container = None
    work = tempfile.mkdtemp(prefix="stackops-bench-", dir=os.path.join(ROOT, ".build"))
    modules = os.path.join(ROOT, "plugins", "modules")
    env = cluster.env
    module_env = dict(env, PYTHONPATH=os.path.join(ROOT, ".build", "collections"), TMPDIR=work)
    conn = dict(login_host="127.0.0.1", login_port=cluster.port, login_user="postgres")
    restore_module = os.path.join(modules, "pg_restore.py")
    rows = {}  # case -> [label, floor, [(seconds, peak RSS, machine CPU-seconds) of each run]]
    spent = []  # machine CPU-seconds of the last measure

    def measure(argv, **kwargs):
        """_benchdb.measure, with the machine's CPU-seconds meanwhile kept in ``spent``."""
        before = busy_seconds()
        seconds, rss, out = measure_once(argv, **kwargs)
        spent[:] = [busy_seconds() - before]
        return seconds, rss, out

    def row(key, label, seconds, rss, floor):
        rows.setdefault(key, [label, floor, []])[0] = label
        rows[key][2].append((seconds, rss, spent[0]))
        print("  (%s) %s: %.1fs, %.0f MB, %.1f CPU-s" % (key, label, seconds, rss, spent[0]), flush=True)

    def fastest(key):
        return min(run[0] for run in rows[key][2])

    def paired(key):
        """The median of this case's runs each divided by its floor's run of the same round."""
        floor = rows[rows[key][1]][2]
        return statistics.median(run[0] / base[0] for run, base in zip(rows[key][2], floor))

    def module(path, args):
        seconds, rss, out = measure(module_argv(path, args), env=module_env)
        result = json.loads(out)
        assert not result.get("failed"), result.get("msg")
        return seconds, rss, result

    try:
        print("database %r: %.0f MB on disk" % (DATABASE, cluster.size() / 1e6), flush=True)
        plain = os.path.join(work, "app.sql.gz")
        measure("set -o pipefail; pg_dump %s | gzip -1 > %s" % (DATABASE, plain), env=env, shell=True)
        dest = os.path.join(work, "backups")
        directory = module(os.path.join(modules, "pg_backup.py"), dict(
            conn, database=DATABASE, dest=dest, format="directory", compression="none", jobs=2))[2]
        default = module(os.path.join(modules, "pg_backup.py"), dict(conn, database=DATABASE, dest=dest))[2]
        print("directory archive %.0f MB (uncompressed), default backup %.0f MB (custom, zstd)"
              % (size_of(directory["path"]) / 1e6, default["size"] / 1e6), flush=True)

        def fresh(name):
            cluster.psql("DROP DATABASE IF EXISTS %s" % name, database="postgres")
            cluster.psql("CREATE DATABASE %s" % name, database="postgres")
            settle()

        def settle():
            # each case starts with the writes of the one before on disk: without this the next case pays for
            # the checkpoint and writeback of the previous restore (seen as 10-20% swings between neighbours)
            cluster.psql("CHECKPOINT", database="postgres")
            if container is not None:
                container.exec(["psql", "-X", "-q", "-c", "CHECKPOINT"])
            os.sync()

        def drop(name):
            # at once: a restored database left in place gets autovacuumed (insert-triggered vacuum and analyze of
            # 1 GB) while the next case runs, which cost the case after it about a second
            cluster.psql("DROP DATABASE IF EXISTS %s" % name, database="postgres")

        for _run in range(repeat):
            fresh("r_a")
            runbook = "set -o pipefail; gunzip -c %s | psql -X -q -v ON_ERROR_STOP=1 -d r_a" % plain
            seconds, rss, _out = measure(runbook, env=env, shell=True)
            row("a", "runbook: gunzip -c piped to psql", seconds, rss, "b")
            drop("r_a")
            fresh("r_b")
            seconds, rss, _out = measure(["pg_restore", "--exit-on-error", "-j", "2", "-d", "r_b", directory["path"]],
                                         env=env)
            row("b", "raw pg_restore -j 2, directory archive", seconds, rss, "b")
            drop("r_b")
            settle()
            seconds, rss, result = module(restore_module, dict(conn, backup=directory["path"], target_database="r_c",
                                                               jobs=2))
            row("c", "pg_restore module, directory archive, jobs=2", seconds, rss, "b")
            drop("r_c")
            settle()
            seconds, rss, result = module(restore_module, dict(conn, backup=default["path"], target_database="r_d"))
            row("d", "pg_restore module, default backup, default options (jobs=%d)" % result["jobs"], seconds, rss, "b")
            drop("r_d")

        container = BenchContainer()
        for _run in range(repeat):
            subprocess.run(["docker", "cp", directory["path"], "%s:/tmp/bench-directory" % container.name],
                           check=True)
            subprocess.run(["docker", "exec", container.name, "chown", "-R", "postgres", "/tmp/bench-directory"],
                           check=True)
            container.fresh("r_e")
            settle()
            seconds, rss, _out = measure(["docker", "exec", "-u", "postgres", container.name, "pg_restore",
                                          "--exit-on-error", "-j", "2", "-d", "r_e", "/tmp/bench-directory"])
            row("e", "raw pg_restore -j 2 in the container, directory archive already there", seconds, rss, "e")
            subprocess.run(["docker", "exec", container.name, "rm", "-rf", "/tmp/bench-directory"], check=True)
            container.exec(["psql", "-X", "-q", "-c", "DROP DATABASE r_e"])
            in_container = dict(container=container.name, container_user="postgres")
            settle()
            seconds, rss, result = module(restore_module, dict(in_container, backup=directory["path"],
                                                               target_database="r_f", jobs=2))
            row("f", "pg_restore module, directory archive (%.1f GB) into the container, jobs=2"
                % (size_of(directory["path"]) / 1e9), seconds, rss, "e")
            container.exec(["psql", "-X", "-q", "-c", "DROP DATABASE r_f"])
            settle()
            seconds, rss, result = module(restore_module, dict(in_container, backup=default["path"],
                                                               target_database="r_g"))
            row("g", "pg_restore module, default backup into the container (jobs=%d)" % result["jobs"], seconds, rss,
                "e")
            container.exec(["psql", "-X", "-q", "-c", "DROP DATABASE r_g"])
        container.remove()
        container = None

        settle()
        seconds, rss, drill = module(os.path.join(modules, "restore_drill.py"), dict(
            backup=default["path"], database=DATABASE, drill_image=local_postgres_image(),
            log_dir=os.path.join(work, "drills")))
        assert drill["passed"], drill["failures"]
        overhead = drill["duration"] - drill["restore_seconds"]
        row("h", "restore_drill, default backup, throwaway container (its restore: %.1fs)" % drill["restore_seconds"],
            seconds, rss, None)

        print()
        print("| case | fastest s | median s | machine CPU-s | peak RSS MB | vs floor: fastest | paired |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for key, (label, floor, runs) in rows.items():
            ratios = ("%.2fx (%s) | %.2fx" % (fastest(key) / fastest(floor), floor, paired(key))) if floor else "- | -"
            print("| (%s) %s | %.1f | %.1f | %.1f | %.0f | %s |" % (
                key, label, fastest(key), statistics.median(run[0] for run in runs),
                statistics.median(run[2] for run in runs), max(run[1] for run in runs), ratios))
        print()
        modules_rss = max(run[1] for k in "cdfgh" for run in rows[k][2])
        print("(d) is %.2fx the floor (b), paired %.2fx (target <= 1.15); (g) is %.2fx (e), paired %.2fx (target "
              "<= 1.15); (c) %.2fx (b); the drill's overhead beyond its restore %.1fs (target < 5s); the largest "
              "module run peaked at %.0f MB (target < 100); the runbook (a) takes %.1fx as long as (d)"
              % (fastest("d") / fastest("b"), paired("d"), fastest("g") / fastest("e"), paired("g"),
                 fastest("c") / fastest("b"), overhead, modules_rss, fastest("a") / fastest("d")))
    finally:
        if container is not None:
            container.remove()
        shutil.rmtree(work, ignore_errors=True)
        cluster.stop()


if __name__ == "__main__":
    main()
