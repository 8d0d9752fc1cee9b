"""Backup speed, size and memory: pg_backup against the runbooks' own commands.

On a generated database of realistic rows (at least 600 MB; see _benchdb.py) it prints seconds,
output bytes and peak RSS (the largest process of each run) for:

  (a) the runbooks' `pg_dump DB | gzip > file`
  (b) community.postgresql's postgresql_db state=dump to a .sql.gz
  (c) stackops.runbook.pg_backup with its defaults (custom format, zstd, exact row counts, verify)
  (d) pg_backup with format=directory and jobs=2
  (e) `pg_dump -Fc -Z0 DB > /dev/null`, the floor
  (f) pg_backup with its defaults, encrypted with age to one recipient (age_recipients)

and the ratios (a)/(c) (target: 4 or more, with output no larger), (c)/(e) (target: 1.15 or less) and
(f)/(c), encryption's overhead (target: 1.10 or less).
The modules run as Ansible runs them (a Python process given their arguments), without the
controller's start-up, so each line measures the work itself.

Usage: python benchmarks/backup.py [--repeat N] [--keep-cluster-running]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchdb import (  # noqa: E402
    DATABASE, ROOT, BenchCluster, measure, module_argv, site_packages_collections, size_of)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; the fastest counts")
    parser.add_argument("--keep-cluster-running", action="store_true")
    opts = parser.parse_args()

    cluster = BenchCluster()
    cluster.start()
    work = tempfile.mkdtemp(prefix="stackops-bench-", dir=os.path.join(ROOT, ".build"))
    try:
        db_size = cluster.size()
        print("database %r: %.0f MB on disk, %s rows" % (
            DATABASE, db_size / 1e6,
            cluster.psql("SELECT sum(n_live_tup) FROM pg_stat_user_tables")))
        env = cluster.env
        conn = dict(login_host="127.0.0.1", login_port=cluster.port, login_user="postgres")
        pg_backup = os.path.join(ROOT, "plugins", "modules", "pg_backup.py")
        pg_db = os.path.join(site_packages_collections(), "community", "postgresql", "plugins", "modules",
                             "postgresql_db.py")
        module_env = dict(env, PYTHONPATH=os.path.join(ROOT, ".build", "collections"))

        def case_a(i):
            out = os.path.join(work, "a%d.sql.gz" % i)
            return measure("set -o pipefail; pg_dump %s | gzip > %s" % (DATABASE, out), env=env, shell=True), out

        def case_b(i):
            out = os.path.join(work, "b%d.sql.gz" % i)
            args = dict(conn, name=DATABASE, state="dump", target=out)
            return measure(module_argv(pg_db, args), env=module_env), out

        def case_c(i):
            dest = os.path.join(work, "c%d" % i)
            res = measure(module_argv(pg_backup, dict(conn, database=DATABASE, dest=dest)), env=module_env)
            return res, json.loads(res[2])["path"]

        def case_d(i):
            dest = os.path.join(work, "d%d" % i)
            args = dict(conn, database=DATABASE, dest=dest, format="directory", jobs=2)
            res = measure(module_argv(pg_backup, args), env=module_env)
            return res, json.loads(res[2])["path"]

        def case_e(_i):
            return measure("pg_dump -Fc -Z0 %s > /dev/null" % DATABASE, env=env, shell=True), None

        key_file = os.path.join(work, "age.key")
        subprocess.run(["age-keygen", "-o", key_file], check=True, capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", key_file], check=True, capture_output=True,
                                   text=True).stdout.strip()

        def case_f(i):
            dest = os.path.join(work, "f%d" % i)
            args = dict(conn, database=DATABASE, dest=dest, age_recipients=[recipient])
            res = measure(module_argv(pg_backup, args), env=module_env)
            return res, json.loads(res[2])["path"]

        cases = [("a", "runbook: pg_dump | gzip > file", case_a),
                 ("b", "community.postgresql postgresql_db dump (.sql.gz)", case_b),
                 ("c", "pg_backup defaults (custom, zstd, exact counts, verify)", case_c),
                 ("d", "pg_backup format=directory jobs=2", case_d),
                 ("e", "floor: pg_dump -Fc -Z0 > /dev/null", case_e),
                 ("f", "pg_backup defaults, encrypted (age_recipients)", case_f)]
        case_e(0)  # warm the page cache so the first case does not pay for it
        rows = {}
        for key, label, run in cases:
            best = None
            for i in range(opts.repeat):
                (seconds, rss, _out), path = run(i)
                size = size_of(path) if path else 0
                if best is None or seconds < best[0]:
                    best = (seconds, size, rss)
                if path:
                    shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
            rows[key] = (label,) + best
            print("  ran (%s) %s: %.2fs" % (key, label, best[0]), flush=True)

        print()
        print("| case | seconds | output bytes | peak RSS MB | vs (a) | vs (e) |")
        print("|---|---:|---:|---:|---:|---:|")
        for key, (label, seconds, size, rss) in rows.items():
            print("| (%s) %s | %.2f | %s | %.0f | %.2fx | %.2fx |" % (
                key, label, seconds, "{:,}".format(size) if size else "-", rss,
                rows["a"][1] / seconds, seconds / rows["e"][1]))
        print()
        a, c, e = rows["a"], rows["c"], rows["e"]
        print("(c) is %.1fx faster than (a) (target >= 4), output %.2fx of (a)'s (target <= 1), "
              "%.2fx the floor (e) (target <= 1.15), peak RSS %.0f MB (target < 100)"
              % (a[1] / c[1], c[2] / a[2], c[1] / e[1], c[3]))
        f = rows["f"]
        print("(f) encryption costs %.2fx of (c) (target <= 1.10), output %.4fx, peak RSS %.0f MB"
              % (f[1] / c[1], f[2] / c[2], f[3]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not opts.keep_cluster_running:
            cluster.stop()


if __name__ == "__main__":
    main()
