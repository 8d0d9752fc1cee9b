"""A PostgreSQL cluster with a large database of realistic rows for the benchmarks, kept between runs
in .build/bench (generating it takes a few minutes; it is reused while its data is there)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, ".build", "bench")
DATA = os.path.join(BENCH_DIR, "data")
READY = os.path.join(BENCH_DIR, "loaded")
DATABASE = "bench"

WORDS = ("account access active address admin agent alert amount answer api application archive area "
         "backup balance batch billing branch browser bucket budget build cache call campaign card cart "
         "change channel checkout client cluster code comment config connection contact content contract "
         "country coupon credit customer dashboard data database date delivery deploy device discount "
         "document domain draft email error event export feature file filter flag folder form format "
         "group health history host image import incident invoice issue item job key label language "
         "layout level license limit link list load locale login message method metric mobile module "
         "monitor network note notification offer order organization owner package page partner password "
         "payment period permission phone plan platform policy price product profile project query queue "
         "quota rate record region release report request resource response restore result review role "
         "rule schedule schema search secret section security server service session setting shipment "
         "signal source status storage store stream subscription support survey system table tag task "
         "team template tenant ticket token topic total traffic transaction update upload usage user value "
         "vendor version warehouse webhook window workflow workspace zone").split()

# Rows like an app's: uuids, words of text, base64 and hex secrets, jsonb documents, timestamps.
# Text is drawn per row (the subqueries refer to the row) so it does not repeat.
LOAD_SQL = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE FUNCTION sentence(seed bigint, k int) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT string_agg((%(words)s::text[])[1 + floor(random() * %(nwords)s)::int], ' ')
  FROM generate_series(1, k + (seed %% 7)::int) $$;

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL, display_name text NOT NULL,
  bio text, password_hash text NOT NULL, settings jsonb NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO users (email, display_name, bio, password_hash, settings, created_at)
SELECT 'user' || i || '@' || (ARRAY['example.com','mail.test','corp.example'])[1 + i %% 3],
       initcap(sentence(i, 1)), sentence(i, 25),
       '$argon2id$v=19$m=65536,t=3,p=4$' || encode(gen_random_bytes(16), 'base64') || '$' || encode(gen_random_bytes(32), 'base64'),
       jsonb_build_object('theme', (ARRAY['light','dark'])[1 + i %% 2], 'locale', (ARRAY['en','de','fr','es','pt'])[1 + i %% 5],
                          'digest', i %% 3 = 0, 'tags', jsonb_build_array(sentence(i, 1), sentence(i + 1, 1))),
       now() - random() * interval '1000 days'
FROM generate_series(1, %(users)s) i;

CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id uuid NOT NULL, token_hash text NOT NULL,
  user_agent text, expires_at timestamptz NOT NULL, revoked boolean NOT NULL);
INSERT INTO refresh_tokens (user_id, token_hash, user_agent, expires_at, revoked)
SELECT gen_random_uuid(), encode(digest(gen_random_bytes(32), 'sha256'), 'hex'),
       (ARRAY['Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0',
              'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Safari/605.1.15',
              'okhttp/4.12.0', 'curl/8.5.0'])[1 + i %% 4],
       now() + random() * interval '30 days', random() < 0.1
FROM generate_series(1, %(tokens)s) i;

CREATE TABLE security_events (
  id bigserial PRIMARY KEY, user_id uuid, kind text NOT NULL, ip inet, details jsonb NOT NULL,
  occurred_at timestamptz NOT NULL);
INSERT INTO security_events (user_id, kind, ip, details, occurred_at)
SELECT gen_random_uuid(), (ARRAY['login','login_failed','password_reset','mfa_enabled','token_revoked'])[1 + i %% 5],
       ('10.' || (i %% 250) || '.' || (i %% 199) || '.' || (i %% 97))::inet,
       jsonb_build_object('request_id', gen_random_uuid(), 'country', (ARRAY['DE','US','FR','BR','IN'])[1 + i %% 5],
                          'risk', round(random()::numeric, 4), 'note', sentence(i, 6)),
       now() - random() * interval '90 days'
FROM generate_series(1, %(events)s) i;
"""

SIZES = dict(users=600000, tokens=1500000, events=1500000)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bindir():
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


class BenchCluster:
    def __init__(self):
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER="postgres",
                        PGDATABASE=DATABASE)

    def _pg(self, *argv):
        subprocess.run(self.as_postgres + [os.path.join(bindir(), argv[0])] + list(argv[1:]), check=True,
                       stdout=subprocess.DEVNULL)

    def start(self):
        if os.path.exists(os.path.join(DATA, "postmaster.pid")):
            # a run that died left it running (on a port we no longer know): stop it first
            subprocess.run(self.as_postgres + [os.path.join(bindir(), "pg_ctl"), "-D", DATA, "-m", "fast", "-w",
                                               "stop"], check=False, capture_output=True)
        if not os.path.exists(READY):
            shutil.rmtree(BENCH_DIR, ignore_errors=True)
            os.makedirs(BENCH_DIR)
            if self.as_postgres:
                shutil.chown(BENCH_DIR, "postgres")
            self._pg("initdb", "-D", DATA, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        self._pg("pg_ctl", "-D", DATA, "-l", os.path.join(BENCH_DIR, "log"), "-w", "-o",
                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB"
                 % (self.port, BENCH_DIR), "start")
        if not os.path.exists(READY):
            try:
                self.load()
            except BaseException:
                self.stop()
                shutil.rmtree(BENCH_DIR, ignore_errors=True)
                raise

    def psql(self, sql, database=DATABASE):
        return subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql],
                              check=True, capture_output=True, text=True, env=self.env).stdout.strip()

    def load(self):
        print("generating the benchmark database (realistic rows, several minutes, done once)...", flush=True)
        started = time.monotonic()
        self.psql("CREATE DATABASE %s" % DATABASE, database="postgres")
        words = "ARRAY[%s]" % ",".join("'%s'" % w for w in WORDS)
        sql = LOAD_SQL % dict(SIZES, words=words, nwords=len(WORDS))
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], input=sql, text=True, check=True,
                       env=self.env)
        self.psql("VACUUM ANALYZE")
        with open(READY, "w") as fh:
            fh.write(self.psql("SELECT pg_database_size(current_database())"))
        print("generated in %.0fs" % (time.monotonic() - started), flush=True)

    def size(self):
        return int(self.psql("SELECT pg_database_size(current_database())"))

    def stop(self):
        self._pg("pg_ctl", "-D", DATA, "-m", "fast", "-w", "stop")


# ---------------------------------------------------------------- measuring

def site_packages_collections():
    import ansible_collections  # the `ansible` package's collections (community.postgresql)
    return [p for p in ansible_collections.__path__ if "site-packages" in p][0]


def measure(argv, env=None, shell=False):
    """Run once: (seconds, peak RSS of the largest process in MB, exit code, stdout)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            executable="/bin/bash" if shell else None)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise SystemExit("failed (%s): %s\n%s\n%s" % (rc, argv, out.decode()[-2000:], err.decode()[-2000:]))
    return elapsed, usage.ru_maxrss / 1024.0, out


def busy_seconds():
    """CPU-seconds the whole machine has spent busy (not idle, not waiting for the disk) since boot, from
    /proc/stat: the difference around a case is what it cost the machine, every process counted (the server,
    dockerd, the programs in a container), which on a CPU-bound machine varies less than the wall clock."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    # user to softirq; not steal
    return (sum(fields[:7]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def module_argv(path, args):
    fd, argsfile = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, fh)
    return [sys.executable, path, argsfile]


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _s, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)
