#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_evidence
short_description: Collect an incident's evidence into one timestamped tar.gz with a checksum
version_added: 0.1.0
description:
  - The runbooks' "copy the logs and a pg_dump aside before touching anything", done in one step while the
    incident is live.
  - "The bundle holds: the compose project's containers (C(compose ps)) and each one's C(docker inspect) with the
    values of secret-looking environment variables redacted; the last O(log_lines) lines of each container's log;
    a resource snapshot of each running container (C(docker stats)); the host's disks, memory and load;
    with O(postgres=true) C(pg_stat_activity), the locks with who blocks whom, and the databases' sizes; the last
    O(ledger_lines) lines of each file of O(ledgers) (release ledger, audit ledger); O(health) (a health_probe
    result) and O(extra) facts."
  - "With O(since) (the security incident's evidence): every log line of the last O(since) of each container
    (C(logs_since/NAME.log), streamed to disk, with docker's timestamps), read for the runbooks' C(grep -iE
    \"unauthorized|forbidden|failed|attack\"): the lines matching each of O(suspicious_patterns) counted by pattern,
    by container and by the client address the line names (O(client_patterns)), the top offenders first
    (C(suspicious.json) with examples, and the RV(suspicious) counts)."
  - O(queries) are the investigation's SQL (failed logins per account, recent sign-ups), each run in a read-only
    transaction with a statement timeout; their rows go in C(queries/NAME.json).
  - Written as C(DEST/NAME_TIMESTAMP.tar.gz) (mode 0600, the evidence may be sensitive) with a C(.sha256) beside it;
    a part that cannot be collected is recorded as an error in the bundle instead of failing the collection.
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.postgres
  - stackops.runbook.container
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_postgres_docker
attributes:
  check_mode:
    support: full
    description: Says what would be collected and writes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
options:
  dest:
    description: Directory of the bundles (created 0700).
    type: path
    required: true
  name:
    description: The incident's short name, the start of the bundle's file name.
    type: str
    default: incident
  compose_project:
    description: The compose project whose containers are described and whose logs are taken.
    type: str
  containers:
    description: More containers (names or ids) to include.
    type: list
    elements: str
    default: []
  log_lines:
    description: Lines of each container's log.
    type: int
    default: 200
  postgres:
    description: Include C(pg_stat_activity), locks and database sizes (through the connection options).
    type: bool
    default: false
  ledgers:
    description: Files whose last O(ledger_lines) lines go in the bundle, such as the release and audit ledgers.
    type: list
    elements: path
    default: []
  ledger_lines:
    description: Lines of each ledger.
    type: int
    default: 50
  health:
    description: A health_probe result (its C(status), C(summary), C(checks)) to include.
    type: dict
    default: {}
  extra:
    description: Other facts to include as C(extra.json), such as the forensic backup's path.
    type: dict
    default: {}
  since:
    description:
      - Take every log line of this window (such as C(2h), C(30m), C(1d)) and read them for suspicious lines.
      - Without it only the last O(log_lines) lines of each container are taken and none is read.
    type: str
  scan_services:
    description: The compose services (or container names) whose logs of O(since) are taken and read; empty for all.
    type: list
    elements: str
    default: []
  suspicious_patterns:
    description:
      - "What makes a line suspicious, as C({name: regular expression}), matched case-insensitively."
      - "Default: the runbooks' four words, each also matching the HTTP status of an access log line (combined
        log format, or caddy's JSON C(\"status\":401)):
        C(unauthorized) (or C(\" 401 )), C(forbidden) (or C(\" 403 )), C(failed) (C(failed) or C(failure)) and
        C(attack) (the word, C(union select), C(../../), C(<script), probes of C(/etc/passwd), C(/.env), C(/.git/),
        C(wp-login))."
    type: dict
  client_patterns:
    description:
      - Regular expressions with one group around the client's address, tried in order on each line; the first
        that finds a valid IP address names the line's client.
      - "Default: caddy's JSON access log (C(client_ip), C(remote_ip), C(remote_addr)), the common and combined
        log formats (nginx, apache: the line starts with the address), and C(from ADDRESS) in an application's
        messages."
    type: list
    elements: str
  top_clients:
    description: How many clients with the most suspicious lines are returned.
    type: int
    default: 20
  queries:
    description:
      - The investigation's SQL (through the connection options), such as failed logins per account over the last
        hour. Each is a C(SELECT) (or C(WITH ...)), run in a read-only transaction with a 30 seconds statement
        timeout, its first 1000 rows kept.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The result's name (the file C(queries/NAME.json)).
        type: str
        required: true
      sql:
        description: The query.
        type: str
        required: true
      database:
        description: The database it runs in.
        type: str
        default: postgres
requirements:
  - The Python docker SDK (C(docker)) when O(compose_project) or O(containers) is set.
"""

EXAMPLES = r"""
- name: Collect the evidence of the stack
  stackops.runbook.incident_evidence:
    dest: /var/lib/stackops-runbook/incidents
    name: api-502
    compose_project: myapp
    postgres: true
    container: myapp-postgres-1
    ledgers:
      - /var/lib/stackops-runbook/releases/myapp.jsonl
      - /var/log/stackops-runbook/ledger.jsonl
    health: "{{ health_result }}"

- name: Collect a security incident's evidence - the last 2 hours of the proxy's and the api's logs, read
  stackops.runbook.incident_evidence:
    dest: /var/lib/stackops-runbook/incidents
    name: credential-stuffing
    compose_project: myapp
    since: 2h
    scan_services: [caddy, api]
    container: myapp-postgres-1
    queries:
      - name: failed_logins_per_account
        database: app
        sql: >-
          SELECT details->>'email' AS account, count(*) AS failures FROM security_events
          WHERE kind = 'login_failed' AND occurred_at > now() - interval '2 hours' GROUP BY 1 ORDER BY 2 DESC
  register: evidence
"""

RETURN = r"""
path:
  description: The bundle.
  returned: success, not in check mode
  type: str
  sample: /var/lib/stackops-runbook/incidents/api-502_20261122T031500Z.tar.gz
sha256:
  description: The bundle's sha256 (also in the C(.sha256) file beside it).
  returned: success, not in check mode
  type: str
  sample: 9f2a...
size:
  description: The bundle's size in bytes.
  returned: success, not in check mode
  type: int
  sample: 48211
parts:
  description: The files in the bundle.
  returned: always
  type: list
  elements: str
  sample: [containers.json, inspect/myapp-api-1.json, logs/myapp-api-1.log, host.json, postgres/activity.json]
errors:
  description: Parts that could not be collected, with why.
  returned: always
  type: dict
  sample: {"postgres": "cannot connect: ..."}
containers:
  description: The containers seen, with service, state and health.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "myapp-api-1", "service": "api", "state": "exited", "health": null, "exit_code": 137}]
failing:
  description: The containers not running, or unhealthy.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "myapp-api-1", "service": "api", "state": "exited", "health": null, "exit_code": 137}]
suspicious:
  description:
    - The suspicious lines of the logs of O(since) - C(lines) read, C(matched), C(patterns) (lines per pattern),
      C(sources) (suspicious lines per service or container) and C(clients) (the O(top_clients) addresses with the
      most suspicious lines, each with its C(suspicious) and total C(lines) and lines per pattern).
    - Example lines are only in the bundle (they may hold personal data).
  returned: when O(since) is set
  type: dict
  sample:
    window_seconds: 7200
    lines: 5120
    matched: 64
    patterns: {unauthorized: 60, forbidden: 0, failed: 60, attack: 4}
    sources: {proxy: 32, api: 32}
    clients: [{client: 203.0.113.7, suspicious: 60, lines: 62, patterns: {unauthorized: 30, failed: 30}}]
queries:
  description: Each query's rows (the first 20; all of them, up to 1000, are in the bundle) and how many there were.
  returned: when O(queries) is set
  type: dict
  sample: {"failed_logins_per_account": {"row_count": 1, "rows": [{"account": "ops@example.com", "failures": 40}]}}
"""

import datetime
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import (
    RunbookModule,
    parse_duration,
    require_libraries,
)
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_client, live_containers
from ansible_collections.stackops.runbook.plugins.module_utils._reports import ReportError
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import (
    ClientContext,
    PsqlSession,
    postgres_common_argument_spec,
)
from ansible_collections.stackops.runbook.plugins.module_utils._suspicious import (
    CLIENT_PATTERNS,
    SUSPICIOUS_PATTERNS,
    PatternError,
    SuspiciousLines,
    lines_of,
)

SECRET_NAME = re.compile(r"pass|secret|token|key|credential|private", re.I)
POSTGRES_QUERIES = {
    "postgres/activity.json": "SELECT coalesce(json_agg(a ORDER BY a.backend_start), '[]') FROM (SELECT pid, usename, "
                              "datname, application_name, client_addr::text, backend_type, state, wait_event_type, "
                              "wait_event, backend_start, xact_start, query_start, state_change, left(query, 2000) "
                              "AS query FROM pg_stat_activity) a;",
    "postgres/locks.json": "SELECT coalesce(json_agg(l), '[]') FROM (SELECT l.pid, pg_blocking_pids(l.pid) AS blocked_by, "
                           "l.locktype, l.mode, l.granted, l.relation::regclass::text AS relation, a.state, "
                           "left(a.query, 500) AS query FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid) "
                           "WHERE NOT l.granted OR cardinality(pg_blocking_pids(l.pid)) > 0 OR l.mode LIKE '%Exclusive%') l;",
    "postgres/sizes.json": "SELECT coalesce(json_agg(d), '[]') FROM (SELECT datname, pg_database_size(datname) AS bytes, "
                           "numbackends, xact_commit, xact_rollback, deadlocks FROM pg_stat_database "
                           "WHERE datname IS NOT NULL) d;",
}
QUERY_ROWS = 1000  # kept in the bundle
QUERY_ROWS_RETURNED = 20  # in the result and the summary
QUERY_TIMEOUT = 30  # seconds of a query
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a bundle's or a query result's file name


def redact(inspect):
    """A container's inspect output with the values of secret-looking environment variables replaced."""
    config = inspect.get("Config") or {}
    env = []
    for item in config.get("Env") or []:
        name, sep, _value = item.partition("=")
        env.append(name + sep + "<redacted>" if sep and SECRET_NAME.search(name) else item)
    config["Env"] = env
    return inspect


def describe(container):
    state = container.attrs.get("State") or {}
    return dict(name=container.name, id=container.id[:12], service=container.labels.get("com.docker.compose.service"),
                image=(container.attrs.get("Config") or {}).get("Image"), state=state.get("Status"),
                health=(state.get("Health") or {}).get("Status"), exit_code=state.get("ExitCode"),
                started=state.get("StartedAt"), finished=state.get("FinishedAt"))


def host_snapshot(paths):
    disks = {}
    for path in paths:
        try:
            st = os.statvfs(path)
            total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
            disks[path] = dict(total_bytes=total, free_bytes=free,
                               used_percent=round(100.0 * (total - free) / total, 1) if total else None)
        except OSError as exc:
            disks[path] = dict(error=str(exc))
    memory = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _sep, value = line.partition(":")
                if key in ("MemTotal", "MemAvailable", "SwapTotal", "SwapFree"):
                    memory[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return dict(disks=disks, memory_bytes=memory, load=list(os.getloadavg()), time=time.time())


def tail(path, lines):
    if not os.path.exists(path):
        return b"(no such file: nothing recorded there yet)\n"
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        return b"\n".join(fh.read().splitlines()[-lines:]) + b"\n"


class Bundle:
    """The bundle's files, kept in memory (small ones) or in a private scratch directory (whole logs) until
    written as one tar.gz; in check mode the large ones go nowhere."""

    def __init__(self, scratch_parent, check_mode):
        self.files, self.errors = {}, {}
        self.scratch_parent, self.check_mode, self.scratch = scratch_parent, check_mode, None

    def add(self, name, data):
        self.files[name] = data if isinstance(data, bytes) else (
            json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()

    def open_file(self, name):
        """A file to stream a large part into (added to the bundle as it is when written)."""
        if self.check_mode:
            self.files[name] = b""  # named in the result's parts, written nowhere
            return open(os.devnull, "wb")
        if self.scratch is None:
            os.makedirs(self.scratch_parent, mode=0o700, exist_ok=True)
            self.scratch = tempfile.mkdtemp(prefix=".collecting-", dir=self.scratch_parent)
        path = os.path.join(self.scratch, "%d.part" % len(self.files))
        self.files[name] = path
        return open(path, "wb")

    def cleanup(self):
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def attempt(self, part, collect):
        try:
            collect()
        except Exception as exc:  # pylint: disable=broad-except
            self.errors[part] = "%s: %s" % (type(exc).__name__, getattr(exc, "explanation", None) or exc)

    def save(self, path):
        """Write the bundle (its folder created 0700); the sha256 of the file."""
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            return self.write(path)
        except OSError as exc:
            raise ReportError("cannot write the bundle %s: %s; make dest writable or change it" % (path, exc))

    def write(self, path):
        partial = path + ".partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                top = os.path.basename(path)[:-len(".tar.gz")]
                for name, data in sorted(self.files.items()):
                    info = tarfile.TarInfo("%s/%s" % (top, name))
                    info.mtime, info.mode = int(time.time()), 0o600
                    if isinstance(data, bytes):
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
                    else:
                        info.size = os.path.getsize(data)
                        with open(data, "rb") as fh:
                            tar.addfile(info, fh)
            raw.flush()
            os.fsync(raw.fileno())
        os.rename(partial, path)
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        with open(path + ".sha256", "w") as fh:
            fh.write("%s  %s\n" % (digest.hexdigest(), os.path.basename(path)))
        return digest.hexdigest()


def read_logs_since(bundle, container, since, scan):
    """Every log line of ``container`` since ``since`` (epoch seconds) into the bundle, each read by ``scan``."""
    source = container.labels.get("com.docker.compose.service") or container.name
    with bundle.open_file("logs_since/%s.log" % container.name) as out:
        chunks = container.logs(stdout=True, stderr=True, stream=True, follow=False, since=since, timestamps=True)
        for line in lines_of(chunks):
            out.write(line.encode("utf-8", "replace") + b"\n")
            # docker puts its RFC 3339 timestamp first: the line as the app wrote it follows the first space
            scan.feed(line.split(" ", 1)[1] if " " in line else line, source)


def scanned(container, services):
    return not services or container.name in services or \
        container.labels.get("com.docker.compose.service") in services


def collect_containers(bundle, client, p, scan=None, since=None):
    found = []
    if p["compose_project"]:
        label = "com.docker.compose.project=%s" % p["compose_project"]
        found += live_containers(client, {"label": label}, include_stopped=True)
    for name in p["containers"]:
        found.append(client.containers.get(name))
    seen, unique = set(), []
    for container in found:
        if container.id not in seen:
            seen.add(container.id)
            unique.append(container)
    described = [describe(c) for c in unique]
    bundle.add("containers.json", described)
    for container in unique:
        bundle.attempt("inspect/%s" % container.name,
                       lambda c=container: bundle.add("inspect/%s.json" % c.name, redact(c.attrs)))
        bundle.attempt("logs/%s" % container.name,
                       lambda c=container: bundle.add("logs/%s.log" % c.name,
                                                      c.logs(tail=p["log_lines"], timestamps=True)))
        if container.status == "running":
            bundle.attempt("stats/%s" % container.name,
                           lambda c=container: bundle.add("stats/%s.json" % c.name, c.stats(stream=False)))
        if scan is not None and scanned(container, p["scan_services"]):
            bundle.attempt("logs_since/%s" % container.name,
                           lambda c=container: read_logs_since(bundle, c, since, scan))
    return described


def collect_postgres(bundle, p):
    with ClientContext(p) as runner:
        session = PsqlSession(runner, "postgres")
        try:
            for name, sql in POSTGRES_QUERIES.items():
                bundle.add(name, json.loads("\n".join(session.query(sql)) or "[]"))
        finally:
            session.close()


def investigation_sql(sql):
    """The user's query as JSON rows, read-only, bounded in time and rows (psql -q prints neither BEGIN nor
    ROLLBACK)."""
    body = sql.strip().rstrip(";").strip()
    return ("BEGIN READ ONLY;\nSET LOCAL statement_timeout = '%ds';\n"
            "SELECT coalesce(json_agg(q), '[]') FROM (SELECT * FROM (\n%s\n) investigation LIMIT %d) q;\nROLLBACK;"
            % (QUERY_TIMEOUT, body, QUERY_ROWS))


def collect_queries(bundle, p, results):
    """Each investigation query in its own psql session, so one that fails leaves the others their answer."""
    with ClientContext(p) as runner:
        for query in p["queries"]:
            def one(q=query):
                session = PsqlSession(runner, q["database"])
                try:
                    rows = json.loads("\n".join(session.query(investigation_sql(q["sql"]))) or "[]")
                finally:
                    session.close()
                bundle.add("queries/%s.json" % q["name"], dict(sql=q["sql"], database=q["database"], rows=rows))
                results[q["name"]] = dict(row_count=len(rows), rows=rows[:QUERY_ROWS_RETURNED])
            bundle.attempt("queries/%s" % query["name"], one)


def log_scan(p):
    """(the scan, the window's start in epoch seconds, its length) for ``since``, or Nones without it."""
    if not p["since"]:
        return None, None, None
    try:
        window = parse_duration(p["since"])
    except ValueError as exc:
        raise PatternError("since: %s" % exc)
    if window < 1:
        raise PatternError("since=%r: the window must be above 0, such as 2h" % p["since"])
    if not (p["compose_project"] or p["containers"]):
        raise PatternError("since: set compose_project or containers - whose logs should be read?")
    scan = SuspiciousLines(SUSPICIOUS_PATTERNS if p["suspicious_patterns"] is None else p["suspicious_patterns"],
                           p["client_patterns"] or CLIENT_PATTERNS)
    return scan, int(time.time()) - window, window


def main():
    spec = postgres_common_argument_spec()
    spec.update(
        dest=dict(type="path", required=True),
        name=dict(type="str", default="incident"),
        compose_project=dict(type="str"),
        containers=dict(type="list", elements="str", default=[]),
        log_lines=dict(type="int", default=200),
        postgres=dict(type="bool", default=False),
        ledgers=dict(type="list", elements="path", default=[]),
        ledger_lines=dict(type="int", default=50),
        health=dict(type="dict", default={}),
        extra=dict(type="dict", default={}),
        since=dict(type="str"),
        scan_services=dict(type="list", elements="str", default=[]),
        suspicious_patterns=dict(type="dict"),
        client_patterns=dict(type="list", elements="str"),
        top_clients=dict(type="int", default=20),
        queries=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            sql=dict(type="str", required=True),
            database=dict(type="str", default="postgres"),
        )),
    )
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not SAFE_NAME.match(p["name"]):
        module.fail_json(msg="name=%r: use letters, digits, '.', '_' and '-' (it starts the bundle's file name)"
                             % p["name"])
    if p["log_lines"] < 1 or p["ledger_lines"] < 1 or p["top_clients"] < 1:
        module.fail_json(msg="log_lines, ledger_lines and top_clients must be 1 or more")
    for query in p["queries"]:
        if not SAFE_NAME.match(query["name"]):
            module.fail_json(msg="queries: name=%r: use letters, digits, '.', '_' and '-' (it names the result's "
                                 "file)" % query["name"])
    wants_docker = bool(p["compose_project"] or p["containers"] or p["container"])
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(p["dest"], "%s_%s.tar.gz" % (p["name"], stamp))
    bundle = Bundle(p["dest"], module.check_mode)
    try:
        scan, since, window = log_scan(p)  # its settings are checked before anything is read
        require_libraries(module, docker=wants_docker)
        result = collect(bundle, p, stamp, wants_docker, scan, since, window)
        if module.check_mode:
            module.exit_json(changed=False, msg="check mode: would write %s" % path, **result)
        sha256 = bundle.save(path)
    except RunbookError as exc:
        module.fail_from(exc)
    finally:
        bundle.cleanup()
    module.exit_json(changed=True, path=path, sha256=sha256, size=os.path.getsize(path), **result)


def collect(bundle, p, stamp, wants_docker, scan, since, window):
    """Every part into ``bundle``; the module's result without the bundle's path."""
    described = []
    bundle.add("bundle.json", dict(name=p["name"], collected_at=stamp, host=os.uname()[1],
                                   compose_project=p["compose_project"], since=p["since"]))
    if wants_docker and (p["compose_project"] or p["containers"]):
        def containers():
            described.extend(collect_containers(bundle, docker_client(p["docker_host"]), p, scan, since))
        bundle.attempt("containers", containers)
    bundle.attempt("host", lambda: bundle.add("host.json", host_snapshot(["/", p["dest"]])))
    if p["postgres"]:
        bundle.attempt("postgres", lambda: collect_postgres(bundle, p))
    for ledger in p["ledgers"]:
        bundle.attempt("ledgers/%s" % os.path.basename(ledger),
                       lambda f=ledger: bundle.add("ledgers/%s" % os.path.basename(f), tail(f, p["ledger_lines"])))
    if p["health"]:
        bundle.add("health.json", p["health"])
    if p["extra"]:
        bundle.add("extra.json", p["extra"])
    queries = {}
    if p["queries"]:
        bundle.attempt("queries", lambda: collect_queries(bundle, p, queries))
    failing = [c for c in described if c["state"] != "running" or c["health"] == "unhealthy"]
    result = dict(containers=described, failing=failing)
    if scan is not None:
        # every offender in the bundle, the top ones in the result
        every = dict(window_seconds=window, **scan.summary(len(scan.clients)))
        bundle.add("suspicious.json", dict(every, examples=scan.examples))
        result["suspicious"] = dict(every, clients=every["clients"][:p["top_clients"]])
    if p["queries"]:
        result["queries"] = queries
    if bundle.errors:
        bundle.add("errors.json", bundle.errors)
    result.update(parts=sorted(bundle.files), errors=bundle.errors)
    return result


if __name__ == "__main__":
    main()
