# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Health checks: each takes its options and returns (status, message, details), where status is
``pass``, ``warn`` or ``fail``. The verdict over many checks: a critical check failing means ``down``,
a warning check failing or any check warning means ``degraded``, else ``healthy``."""

from __future__ import annotations

import datetime
import http.client
import json
import math
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse

from ansible_collections.stackops.runbook.plugins.module_utils import _measures as measures
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import parse_duration
from ansible_collections.stackops.runbook.plugins.module_utils._redis import command_bytes
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import ClientContext, PsqlSession

try:
    import jmespath
except ImportError:  # pragma: no cover - modules report it through require_libraries
    jmespath = None

CHECK_TYPES = ("http", "status_json", "tcp", "postgres", "container", "redis", "tls", "disk", "latency",
               "container_stats", "logs", "docker_disk")
COMPARISONS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "contains": lambda a, b: b in a,
    "matches": lambda a, b: re.search(b, str(a)) is not None,
}
STATUS_ORDER = {"up": 0, "ok": 0, "healthy": 0, "degraded": 1, "warn": 1, "down": 2, "fail": 2}


class CheckInputError(RunbookError):
    """A check's options are wrong; the message names the check and the option."""


SECRET_KEYS = ("password", "login_password")
SECRET_HEADERS = ("authorization", "cookie", "x-api-key", "x-auth-token", "proxy-authorization")


def secrets_of(check):
    """The values of a check that must never reach the output or a log."""
    found = [str(check[k]) for k in SECRET_KEYS if check.get(k)]
    found += [str(v) for k, v in (check.get("headers") or {}).items() if k.lower() in SECRET_HEADERS and v]
    return found


def _require(check, *keys):
    for key in keys:
        if check.get(key) in (None, ""):
            raise CheckInputError("check %r (%s) needs %s" % (check.get("name"), check.get("type"), key))


def validate_check(check):
    """Raise CheckInputError for options that cannot work, before anything runs."""
    name, kind = check.get("name"), check.get("type")
    if not name:
        raise CheckInputError("every check needs a name")
    if kind not in CHECK_TYPES:
        raise CheckInputError("check %r has unknown type %r: use one of %s" % (name, kind, ", ".join(CHECK_TYPES)))
    if check.get("severity", "critical") not in ("critical", "warning"):
        raise CheckInputError("check %r: severity must be critical or warning" % name)
    if "timeout" in check:
        check_timeout(check)
    if check.get("body_regex") is not None:
        _compile(name, "body_regex", check["body_regex"])
    try:
        measures.validate_limits(check)
    except measures.LimitError as exc:
        raise CheckInputError(str(exc))
    if kind in ("http", "status_json", "latency"):
        _require(check, "url")
        if not re.match(r"^https?://[^/]+", check["url"]):
            raise CheckInputError("check %r: url %r needs a scheme and a host, such as http://127.0.0.1:8080/health"
                                  % (name, check["url"]))
        for expression, expected in (check.get("json") or {}).items():
            try:
                jmespath.compile(expression)
            except jmespath.exceptions.ParseError as exc:
                raise CheckInputError("check %r: json expression %r is not valid jmespath: %s" % (name, expression, exc))
            if isinstance(expected, dict) and (len(expected) != 1 or next(iter(expected)) not in COMPARISONS):
                raise CheckInputError("check %r: json %r wants one comparison of %s" % (
                    name, expression, ", ".join(COMPARISONS)))
            if isinstance(expected, dict) and "matches" in expected:
                _compile(name, "json %s matches" % expression, expected["matches"])
    elif kind in ("tcp", "redis", "tls"):
        _require(check, "host", "port")
    elif kind == "container":
        _require(check, "container")
    elif kind in ("container_stats", "logs"):
        if not check.get("container") and not check.get("service"):
            raise CheckInputError("check %r (%s) needs container, or service (and project) of a compose stack"
                                  % (name, kind))
        if kind == "logs":
            _require(check, "pattern")
            _compile(name, "pattern", check["pattern"])
            if check.get("per"):
                _compile(name, "per", check["per"])
            log_window(check)
    if kind == "latency" and not (isinstance(check.get("requests", 20), int) and 1 <= check.get("requests", 20) <= 1000):
        raise CheckInputError("check %r: requests=%r must be a whole number from 1 to 1000" % (name, check.get("requests")))
    elif kind == "disk":
        _require(check, "path")
    for low, high in (("warning_percent", "critical_percent"), ("warning_days", "critical_days")):
        for key in (low, high):
            value = check.get(key)
            if value is not None and (not isinstance(value, (int, float)) or value < 0
                                      or (key.endswith("percent") and value > 100)):
                raise CheckInputError("check %r: %s=%r is out of range" % (name, key, value))


DEFAULT_TIMEOUT = 5


def log_window(check):
    """Seconds of logs a ``logs`` check reads (``since``, default 15m)."""
    try:
        seconds = parse_duration(check.get("since", "15m"))
    except ValueError as exc:
        raise CheckInputError("check %r: since: %s" % (check.get("name"), exc))
    if seconds <= 0:
        raise CheckInputError("check %r: since must be above 0, such as 15m" % check.get("name"))
    return seconds


def check_timeout(check):
    """The check's ``timeout`` in seconds (a number above 0); CheckInputError otherwise."""
    value = check.get("timeout", DEFAULT_TIMEOUT)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = None
    if isinstance(value, bool) or seconds is None or not 0 < seconds < 86400:
        raise CheckInputError("check %r: timeout=%r must be a number of seconds above 0, such as 5"
                              % (check.get("name"), value))
    return seconds


def _compile(name, what, pattern):
    try:
        re.compile(str(pattern))
    except re.error as exc:
        raise CheckInputError("check %r: %s %r is not a valid regular expression: %s" % (name, what, pattern, exc))


class Deadline:
    """Bounds a whole check, from connect to the last byte. Socket timeouts bound each read, so a server that
    sends one byte a second would never time out; at the deadline this shuts the check's socket down, which
    wakes whatever waits on it."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._timers = []

    def remaining(self):
        return max(0.001, self.end - time.monotonic())

    def guard(self, sock):
        timer = threading.Timer(self.remaining(), self._fire, args=(sock,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)
        return sock

    def connect(self, host, port):
        """A TCP connection to host:port, guarded."""
        return self.guard(socket.create_connection((host, int(port)), timeout=self.remaining()))

    def _fire(self, sock):
        self.expired = True
        try:
            # the plain socket's shutdown, also under an SSLSocket: it only wakes the reader
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def message(self, what, exc):
        if self.expired:
            return "%s: no complete answer within the %gs timeout" % (what, self.seconds)
        return "%s: %s" % (what, getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for timer in self._timers:
            timer.cancel()


def _expect(actual, expected):
    if isinstance(expected, dict):
        (op, value), = expected.items()
        try:
            return COMPARISONS[op](actual, value)
        except TypeError:
            return False
    return actual == expected


_TLS_CONTEXTS = {}
_TLS_LOCK = threading.Lock()


def _tls_context(validate_certs, ca_path):
    """One SSL context per (validate, CA file) for the whole run: building one loads the CA bundle, which
    costs tens of milliseconds of CPU, and fifty checks at once would pay it fifty times."""
    key = (bool(validate_certs), ca_path)
    with _TLS_LOCK:
        if key not in _TLS_CONTEXTS:
            context = ssl.create_default_context(cafile=ca_path)
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            _TLS_CONTEXTS[key] = context
        return _TLS_CONTEXTS[key]


def _http_request(check, deadline):
    """(status, body) of one request, straight over http.client: health endpoints are local, so no proxy,
    and no redirects followed (list 3xx codes in status to accept them)."""
    url = urllib.parse.urlsplit(check["url"])
    port = url.port or (443 if url.scheme == "https" else 80)
    sock = deadline.connect(url.hostname, port)
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(url.hostname, port, timeout=deadline.remaining())
        sock = _tls_context(check.get("validate_certs", True), check.get("ca_path")).wrap_socket(
            sock, server_hostname=url.hostname)
    else:
        connection = http.client.HTTPConnection(url.hostname, port, timeout=deadline.remaining())
    connection.sock = sock
    try:
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        headers = {"User-Agent": "stackops.runbook health_probe"}
        headers.update(check.get("headers") or {})
        connection.request(check.get("method", "GET"), path, headers=headers)
        response = connection.getresponse()
        body = response.read(1024 * 1024)
        if deadline.expired:
            raise socket.timeout("timed out")
        return response.status, body
    finally:
        connection.close()


def one_request(check):
    """One request of a latency check: (HTTP status, None), or (None, what went wrong)."""
    with Deadline(check_timeout(check)) as deadline:
        try:
            status, _body = _http_request(check, deadline)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, deadline.message(check["url"], exc)
    return status, None


def check_http(check):
    started = time.monotonic()
    with Deadline(check_timeout(check)) as deadline:
        try:
            status, body = _http_request(check, deadline)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return "fail", deadline.message(check["url"], exc), {}
    latency_ms = (time.monotonic() - started) * 1000
    details = dict(http_status=status, latency_ms=round(latency_ms, 1))
    accepted = check.get("status") or [200]
    if status not in accepted:
        return "fail", "HTTP %d, expected %s" % (status, "/".join(str(s) for s in accepted)), details
    if check.get("max_latency_ms") is not None and latency_ms > check["max_latency_ms"]:
        return "fail", "answered in %.0f ms, over the %s ms budget" % (latency_ms, check["max_latency_ms"]), details
    text = body.decode("utf-8", "replace")
    if check.get("body_regex") and not re.search(check["body_regex"], text):
        return "fail", "body does not match %r" % check["body_regex"], details
    if check.get("json") or check["type"] == "status_json":
        try:
            document = json.loads(text)
        except ValueError:
            return "fail", "body is not JSON", details
        for expression, expected in (check.get("json") or {}).items():
            actual = jmespath.search(expression, document)
            if not _expect(actual, expected):
                return "fail", "%s is %r, expected %r" % (expression, actual, expected), details
        if check["type"] == "status_json":
            return _service_statuses(check, document, details)
    return "pass", "HTTP %d in %.0f ms" % (status, latency_ms), details


def _service_statuses(check, document, details):
    services = jmespath.search(check.get("services", "services"), document) or {}
    states = {}
    for name, value in services.items():
        state = value.get("status") if isinstance(value, dict) else value
        states[name] = str(state).lower()
    details["services"] = states
    down = sorted(n for n, s in states.items() if STATUS_ORDER.get(s, 2) == 2)
    degraded = sorted(n for n, s in states.items() if STATUS_ORDER.get(s, 2) == 1)
    if not states:
        return "fail", "no services found at %r" % check.get("services", "services"), details
    if down:
        return "fail", "down: %s" % ", ".join(down), details
    if degraded:
        return "warn", "degraded: %s" % ", ".join(degraded), details
    return "pass", "%d services up" % len(states), details


def check_tcp(check):
    where = "%s:%s" % (check["host"], check["port"])
    with Deadline(check_timeout(check)) as deadline:
        try:
            deadline.connect(check["host"], check["port"]).close()
            return "pass", "%s accepts connections" % where, {}
        except OSError as exc:
            return "fail", deadline.message(where, exc), {}


def check_redis(check):
    where = "%s:%s" % (check["host"], check["port"])
    with Deadline(check_timeout(check)) as deadline:
        try:
            with deadline.connect(check["host"], check["port"]) as sock:
                reader = sock.makefile("rb")
                if check.get("password"):
                    sock.sendall(command_bytes("AUTH", check["password"]))
                    answer = reader.readline().strip()
                    if not answer.startswith(b"+OK"):
                        return "fail", "AUTH refused: %s" % answer.decode("utf-8", "replace"), {}
                sock.sendall(command_bytes("PING"))
                answer = reader.readline().strip()
                info = _redis_info(sock, reader) if answer == b"+PONG" else {}
        except OSError as exc:
            return "fail", deadline.message(where, exc), {}
        if deadline.expired:
            return "fail", deadline.message(where, None), {}
    if answer != b"+PONG":
        return "fail", "PING answered %s" % answer.decode("utf-8", "replace"), {}
    details = dict(used_memory_bytes=int(info.get("used_memory", 0)), maxmemory_bytes=int(info.get("maxmemory", 0)),
                   connected_clients=int(info.get("connected_clients", 0)))
    message = "PONG; %d clients, %d MiB used" % (details["connected_clients"], details["used_memory_bytes"] // 1048576)
    if details["maxmemory_bytes"]:
        # no maxmemory: redis grows until the host runs out, so there is no percentage to grade
        details["memory_percent"] = round(100.0 * details["used_memory_bytes"] / details["maxmemory_bytes"], 1)
        message += " (%.1f%% of maxmemory)" % details["memory_percent"]
    return "pass", message, details


def _redis_info(sock, reader):
    """``INFO``'s fields (memory, clients...) as a dict of strings."""
    sock.sendall(command_bytes("INFO"))
    header = reader.readline().strip()
    if not header.startswith(b"$"):
        return {}
    body = reader.read(int(header[1:]) + 2).decode("utf-8", "replace")
    return dict(line.split(":", 1) for line in body.splitlines() if ":" in line and not line.startswith("#"))


def check_tls(check):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we judge the dates ourselves, also of self-signed certificates
    with Deadline(check_timeout(check)) as deadline:
        try:
            with deadline.connect(check["host"], check["port"]) as sock, context.wrap_socket(
                    sock, server_hostname=check.get("server_name") or check["host"]) as tls:
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as exc:
            return "fail", deadline.message("TLS handshake with %s:%s failed" % (check["host"], check["port"]),
                                            exc), {}
    # Imported here: only tls checks need it (ansible-core depends on cryptography, so it is there).
    from cryptography import x509
    cert = x509.load_der_x509_certificate(der)
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(
        tzinfo=datetime.timezone.utc)
    days = (not_after - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
    details = dict(days_left=round(days, 1), not_after=not_after.isoformat())
    if days < check.get("critical_days", 7):
        return "fail", "certificate expires in %.1f days (critical under %s)" % (days, check.get("critical_days", 7)), \
            details
    if days < check.get("warning_days", 30):
        return "warn", "certificate expires in %.1f days (warning under %s)" % (days, check.get("warning_days", 30)), \
            details
    return "pass", "certificate valid for %.0f more days" % days, details


def check_disk(check):
    try:
        st = os.statvfs(check["path"])
    except OSError as exc:
        return "fail", "%s: %s" % (check["path"], exc.strerror), {}
    # what df reports: used / (used + available to unprivileged users); the blocks reserved for root count as
    # neither, so a full disk reads 100% here as in df, not 95%
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    available = st.f_bavail * st.f_frsize
    percent = 100.0 * used / (used + available) if used + available else 0.0
    details = dict(used_percent=round(percent, 1))
    if percent >= check.get("critical_percent", 90):
        return "fail", "%s is %.1f%% full (critical at %s%%)" % (
            check["path"], percent, check.get("critical_percent", 90)), details
    if percent >= check.get("warning_percent", 80):
        return "warn", "%s is %.1f%% full (warning at %s%%)" % (
            check["path"], percent, check.get("warning_percent", 80)), details
    return "pass", "%s is %.1f%% full" % (check["path"], percent), details


def check_container(check, client):
    try:
        info = client.api.inspect_container(check["container"])
    except Exception as exc:  # pylint: disable=broad-except
        return "fail", "container %s: %s" % (check["container"], getattr(exc, "explanation", None) or exc), {}
    state = info.get("State", {})
    details = dict(state=state.get("Status"))
    if not state.get("Running"):
        details["fatal"] = True
        return "fail", "container %s is %s (exit code %s)" % (check["container"], state.get("Status"),
                                                              state.get("ExitCode")), details
    health = (state.get("Health") or {}).get("Status")
    details["health"] = health or "none"
    if health is None:
        if check.get("require_healthcheck", True):
            return "fail", "container %s is running but has no healthcheck, so its health is unknown" \
                % check["container"], details
        return "pass", "container %s is running (no healthcheck)" % check["container"], details
    if health == "unhealthy":
        details["fatal"] = True
        return "fail", "container %s is unhealthy" % check["container"], details
    if health == "starting":
        return "fail", "container %s is still starting" % check["container"], details
    return "pass", "container %s is healthy" % check["container"], details


POSTGRES_KEYS = ("login_host", "login_port", "login_user", "login_password", "login_unix_socket", "ssl_mode",
                 "ca_cert", "bin_dir", "container", "container_user", "docker_host")


# connections (client backends) against max_connections, and how long the oldest running query and open
# transaction of others have run: what the runbooks read from pg_stat_activity
ACTIVITY_SQL = ("SELECT count(*), current_setting('max_connections'), "
                "coalesce(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active' "
                "AND pid <> pg_backend_pid()), 0), "
                "coalesce(max(extract(epoch FROM now() - xact_start)) FILTER (WHERE pid <> pg_backend_pid()), 0) "
                "FROM pg_stat_activity WHERE backend_type = 'client backend';")


def check_postgres(check):
    """Connect (psql, with the collection's connection options), run ``query`` if given, and check that the
    ``tables`` exist (the schema is migrated). The check's timeout bounds the connection (connect_timeout),
    the statements (statement_timeout, lock_timeout: a query on a locked table waits no longer) and psql
    itself."""
    params = dict(login_port=5432, login_user="postgres", ssl_mode="prefer")
    params.update({k: check[k] for k in POSTGRES_KEYS if check.get(k) is not None})
    params.setdefault("login_host", None)
    seconds = check_timeout(check)
    milliseconds = max(1, int(seconds * 1000))
    timer = None
    try:
        with ClientContext(params, connect_timeout=max(2, int(math.ceil(seconds)))) as runner:
            session = PsqlSession(runner, check.get("database", "postgres"))
            timer = threading.Timer(seconds + 1, session.kill)  # psql itself stuck: end it
            timer.daemon = True
            timer.start()
            try:
                version = session.scalar("SET statement_timeout = %d; SET lock_timeout = %d; "
                                         "SELECT current_setting('server_version');" % (milliseconds, milliseconds))
                if check.get("query"):
                    rows = [r for r in session.query(check["query"].rstrip().rstrip(";") + ";") if r.strip()]
                    if not rows:
                        return "fail", "query returned no rows", dict(server_version=version)
                missing = []
                for table in check.get("tables") or []:
                    quoted = "'%s'" % table.replace("'", "''")
                    if session.scalar("SELECT to_regclass(%s) IS NULL;" % quoted) == "t":
                        missing.append(table)
                if missing:
                    return "fail", "schema not ready: missing %s" % ", ".join(missing), dict(server_version=version)
                activity = session.scalar(ACTIVITY_SQL).split("|")
            finally:
                timer.cancel()
                session.close()
    except CommandError as exc:
        return "fail", exc.stderr.strip().splitlines()[0] if exc.stderr.strip() else str(exc), {}
    except Exception as exc:  # pylint: disable=broad-except
        return "fail", str(exc), {}
    connections, maximum = int(activity[0]), int(activity[1])
    details = dict(server_version=version, connections=connections, max_connections=maximum,
                   connections_percent=round(100.0 * connections / maximum, 1) if maximum else 0.0,
                   longest_query_seconds=round(float(activity[2]), 1),
                   longest_transaction_seconds=round(float(activity[3]), 1))
    return "pass", "PostgreSQL %s answers; %d of %d connections, longest query %.0fs, transaction %.0fs" % (
        version.split()[0], connections, maximum, details["longest_query_seconds"],
        details["longest_transaction_seconds"]), details


def verdict(results):
    """healthy / degraded / down over check results (dicts with status and severity)."""
    if any(r["status"] == "fail" and r["severity"] == "critical" for r in results):
        return "down"
    if any(r["status"] in ("fail", "warn") for r in results):
        return "degraded"
    return "healthy"
