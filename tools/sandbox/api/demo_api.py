"""A small stand-in for the users' API container: health endpoints, a per-service status page, and
``migrate`` / ``migrate status`` commands like the runbooks' ``npx prisma migrate deploy``.

The server is standard library only, so it runs on the official python image and on the locally built one;
the migrate commands need psycopg2 (tools/build-images.sh puts it in the versioned API images).
DEMO_SERVICE_STATES ("cache=degraded,queue=down") overrides services' states for health drills.
DEMO_FAILURE makes a broken release for deploy tests: ``never_healthy`` (the health endpoints always say
503) or ``unhealthy_after=SECONDS`` (healthy at first, then 503).
Every request is logged to stdout, one line each, as a reverse proxy's access log is. With REDIS_HOST the cache's
state is redis's answer to PING, and ``worker`` runs the stack's background worker: a job every
WORKER_INTERVAL seconds (a counter and a login session in redis, a row count from the database), a log line each.
``POST /api/login`` ({"email", "password"}) is the sign-in the security-incident tests attack: each attempt is a
row of security_events (login or login_failed, with the client's address), a failure is logged as a warning and
answered 401, a success (the password DEMO_LOGIN_PASSWORD) stores a session in redis (``session:<token>``).
The client is the last address of X-Forwarded-For (set by the proxy), as apps behind a proxy take it.
On SIGTERM the server stops accepting, finishes the requests in flight and exits, as a real app should.
"""

import glob
import ipaddress
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.time()
VERSION = os.environ.get("APP_VERSION", "0.0.0")
DB = (os.environ.get("DATABASE_HOST", "postgres"), int(os.environ.get("DATABASE_PORT", "5432")))
FAILURE = os.environ.get("DEMO_FAILURE", "")
# the proxies in front of the app (docker's networks, loopback): the client is the address before them
PROXIES = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8")]
REDIS = (os.environ.get("REDIS_HOST", ""), int(os.environ.get("REDIS_PORT", "6379")))


def redis_command(*words):
    """One command to redis over its protocol (no client library in the image); the reply's first line."""
    with socket.create_connection(REDIS, timeout=2) as sock:
        parts = [b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words]
        sock.sendall(b"".join([b"*%d\r\n" % len(words)] + parts))
        return sock.makefile("rb").readline().decode().strip()


def cache_state():
    if not REDIS[0]:
        return "up"
    try:
        return "up" if redis_command("PING") == "+PONG" else "degraded"
    except OSError:
        return "down"


def database_login():
    """With DEMO_DB_LOGIN=1 readiness logs in to the database (so a wrong password shows), else it only connects.
    With DEMO_STRICT_SCHEMA=1 it is not ready while the database holds migrations this release does not know (a
    schema newer than the code), as apps that check their migrations at start-up are."""
    if os.environ.get("DEMO_DB_LOGIN") != "1":
        return database_state(), None
    try:
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                if os.environ.get("DEMO_STRICT_SCHEMA") == "1":
                    cur.execute("SELECT to_regclass('app_migrations') IS NOT NULL")
                    applied = set()
                    if cur.fetchone()[0]:
                        cur.execute("SELECT name FROM app_migrations")
                        applied = {row[0] for row in cur.fetchall()}
                    unknown = sorted(applied - {os.path.basename(f) for f in migrations()})
                    if unknown:
                        return "down", "the database schema is newer than this release (%s)" % ", ".join(unknown)
        finally:
            conn.close()
        return "up", None
    except Exception as exc:  # pylint: disable=broad-except
        return "down", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def failing():
    secret = os.environ.get("SESSION_SECRET")
    if secret is not None and len(secret) < 16:
        return True  # the app refuses to start with a weak session secret
    if FAILURE == "never_healthy":
        return True
    if FAILURE.startswith("unhealthy_after="):
        return time.time() - STARTED > float(FAILURE.split("=", 1)[1])
    return False


def overrides():
    states = {}
    for item in filter(None, os.environ.get("DEMO_SERVICE_STATES", "").split(",")):
        name, _sep, state = item.partition("=")
        states[name.strip()] = state.strip()
    return states


def database_state():
    try:
        with socket.create_connection(DB, timeout=1):
            return "up"
    except OSError:
        return "down"


def services():
    states = {"database": database_state(), "cache": cache_state(), "queue": "up", "storage": "up"}
    states.update(overrides())
    return states


def overall(states):
    if states.get("database") == "down" or "down" in states.values():
        return "down"
    if "degraded" in states.values():
        return "degraded"
    return "ok"


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-api/" + VERSION

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path.startswith("/health") and failing():
            self._json(503, {"status": "down", "version": VERSION, "error": "this release is broken (%s)" % FAILURE})
        elif path == "/health/live":
            self._json(200, {"status": "alive", "uptime_seconds": round(time.time() - STARTED, 1)})
        elif path == "/health/ready":
            state, error = database_login()
            self._json(200 if state == "up" else 503, {"status": "ready" if state == "up" else "not_ready",
                                                       "database": state, "error": error})
        elif path == "/health":
            states = services()
            verdict = overall(states)
            self._json(503 if verdict == "down" else 200, {"status": verdict, "version": VERSION})
        elif path == "/api/system/status":
            states = services()
            self._json(200, {"status": overall(states), "version": VERSION,
                             "services": {name: {"status": state} for name, state in states.items()}})
        elif path == "/api/version":
            self._json(200, {"version": VERSION, "started_at": STARTED})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != "/api/login":
            return self._json(404, {"error": "not found"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            return self._json(400, {"error": "a JSON body with email and password"})
        email = str(body.get("email", ""))
        ok = body.get("password") == os.environ.get("DEMO_LOGIN_PASSWORD", "correct-horse-battery")
        try:
            conn = connect()
            with conn, conn.cursor() as cur:
                cur.execute("INSERT INTO security_events (user_id, kind, ip, details, occurred_at) "
                            "SELECT (SELECT id FROM users WHERE email = %s), %s, %s, %s, now()",
                            (email, "login" if ok else "login_failed", self.client(), json.dumps({"email": email})))
            conn.close()
        except Exception as exc:  # pylint: disable=broad-except
            sys.stdout.write("ERROR cannot record the login attempt: %s\n" % str(exc).strip())
        if not ok:
            sys.stdout.write("WARNING login failed for %s from %s\n" % (email, self.client()))
            return self._json(401, {"error": "unauthorized"})
        token = secrets.token_hex(16)
        redis_command("SET", "session:" + token, email, "EX", "3600")
        return self._json(200, {"session": token})

    def client(self):
        """The last address of X-Forwarded-For that is not a proxy of ours, as apps behind one take it."""
        hops = [a.strip() for a in self.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        hops.append(self.client_address[0])
        for address in reversed(hops):
            try:
                if not any(ipaddress.ip_address(address) in network for network in PROXIES):
                    return address
            except ValueError:
                return address
        return hops[0]

    def log_message(self, fmt, *args):
        # the access log: one line per request (the runbooks grep it for 5xx and errors)
        sys.stdout.write('%s - - [%s] %s\n' % (self.client(), self.log_date_time_string(), fmt % args))
        sys.stdout.flush()


def connect():
    import psycopg2  # only the migrate commands need it
    return psycopg2.connect(host=DB[0], port=DB[1], dbname=os.environ.get("DATABASE_NAME", "app"),
                            user=os.environ.get("DATABASE_USER", "postgres"),
                            password=os.environ.get("DATABASE_PASSWORD", ""), connect_timeout=5)


def migrations():
    """This release's migrations: the files of /app/migrations whose number DEMO_MIGRATIONS lists."""
    wanted = set(filter(None, os.environ.get("DEMO_MIGRATIONS", "").split(",")))
    directory = os.environ.get("DEMO_MIGRATIONS_DIR", "/app/migrations")
    return [f for f in sorted(glob.glob(os.path.join(directory, "*.sql")))
            if os.path.basename(f).split("_", 1)[0] in wanted]


def migrate(status_only):
    """Apply the pending migrations, each in its own transaction (as Prisma does), or with ``status`` say
    which are pending (exit 1 when any is)."""
    conn = connect()
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('app_migrations') IS NOT NULL")
        exists = cur.fetchone()[0]
        if not exists and not status_only:  # the status check only reads
            cur.execute("CREATE TABLE app_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL "
                        "DEFAULT now())")
        applied = set()
        if exists:
            cur.execute("SELECT name FROM app_migrations")
            applied = {row[0] for row in cur.fetchall()}
    pending = [f for f in migrations() if os.path.basename(f) not in applied]
    if status_only:
        names = ", ".join(os.path.basename(path) for path in pending)
        print("%d applied, %d pending%s" % (len(applied), len(pending), ": " + names if names else ""))
        return 1 if pending else 0
    for path in pending:
        with open(path) as fh:
            sql = fh.read()
        with conn:
            with conn.cursor() as cur:
                print("applying %s" % os.path.basename(path), flush=True)
                cur.execute(sql)
                cur.execute("INSERT INTO app_migrations (name) VALUES (%s)", (os.path.basename(path),))
    print("%d migration(s) applied" % len(pending))
    return 0


def work():
    """The background worker: a job every WORKER_INTERVAL seconds, logged; a failed job is logged as an ERROR."""
    interval = float(os.environ.get("WORKER_INTERVAL", "5"))
    job = 0
    while True:
        job += 1
        try:
            done = redis_command("INCR", "jobs:processed")
            redis_command("SET", "session:worker-%d" % (job % 5), "user=%d" % job, "EX", "3600")
            print("worker: job %d done (%s processed)" % (job, done.lstrip(":")), flush=True)
        except OSError as exc:
            print("worker: ERROR job %d failed: %s" % (job, exc), flush=True)
        time.sleep(interval)


def serve():
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler)
    server.daemon_threads = False  # server_close() waits for the requests in flight

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown).start()
    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["migrate"]:
        sys.exit(migrate(sys.argv[2:3] == ["status"]))
    if sys.argv[1:2] == ["worker"]:
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
        work()
    serve()
