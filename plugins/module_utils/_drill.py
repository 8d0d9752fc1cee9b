# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Restore drills: the throwaway targets (a container, or a scratch database), the grading of a restore,
and the drill log in the runbooks' template.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import socket
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._imported import is_external
from ansible_collections.stackops.runbook.plugins.module_utils._restore import Admin, compare_counts, row_counts
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._docker import (
    ContainerRunner,
    docker_client,
    docker_sdk,
    live_containers,
)
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import ClientContext, PsqlSession, ident, literal
from ansible_collections.stackops.runbook.plugins.module_utils._reports import append_line
from ansible_collections.stackops.runbook.plugins.module_utils._units import size_text

LABEL = "io.stackops.runbook.drill"
EXPIRES_LABEL = "io.stackops.runbook.drill.expires"
OWNER_LABEL = "io.stackops.runbook.drill.owner"
SCRATCH_PREFIX = "stackops_drill_"
OWNER_COMMENT = "stackops.runbook drill, owner "
LEFTOVER_AFTER = 6 * 3600  # a drill older than this is dead: whatever it left is removed


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def _process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError):
        return None


def _pid_namespace():
    """The pid namespace we see processes in: containers that share a host's name and kernel (docker's host
    network) still have pid namespaces of their own, where our pids mean nothing."""
    try:
        return os.readlink("/proc/self/ns/pid").split("[", 1)[-1].rstrip("]")
    except OSError:
        return "unknown"


def owner_token():
    """Who runs this drill: host, boot, pid namespace, pid and the pid's start time, so a later drill can tell
    whether it still runs (a pid alone may have been reused)."""
    pid = os.getpid()
    return "%s/%s/%s/%d/%s" % (socket.gethostname(), _boot_id(), _pid_namespace(), pid, _process_start(pid))


def owner_gone(token):
    """True when the drill that wrote ``token`` is certainly gone (this host and pid namespace, and another boot
    or a dead or reused pid); False when it runs or cannot be told from here (another host or container: the
    expiry decides)."""
    try:
        host, boot, namespace, pid, started = token.split("/")
        pid = int(pid)
    except (AttributeError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    if boot != _boot_id():
        return True
    return namespace == _pid_namespace() and _process_start(pid) != started


def is_leftover(owner, born_epoch, now=None):
    """Whether what a drill left may be removed: its owner is gone, or it is older than LEFTOVER_AFTER."""
    return owner_gone(owner) or (now or time.time()) - born_epoch > LEFTOVER_AFTER


CORRECTIVE_ACTIONS = {
    "corrupt": "The backup file does not match its manifest (bit rot, truncation or tampering): take a new backup "
               "now, check the storage, and drill the previous backup to know the last good one.",
    "empty": "The backup is empty: check pg_dump's permissions and the database name, and the free space where "
             "backups are written; take a new backup.",
    "restore_error": "The restore itself failed: read the error; missing roles or extensions in the drill image are "
                     "the usual cause (restore the globals backup first, or use an image with the extensions).",
    "missing_tables": "Tables listed in the manifest are missing after the restore: check pg_dump's table filters "
                      "and permissions on those tables.",
    "row_counts": "Row counts differ from the manifest: the dump is inconsistent; take a new backup and drill it.",
    "critical_table": "A critical table holds fewer rows than required: check whether data was lost before the "
                      "backup, and the backup schedule.",
    "spot_check": "A spot check found nothing: the data the application depends on is not in the backup; check the "
                  "query and the data before the backup.",
    "source_drift": "The live database has fewer rows than the backup: rows were deleted since; find out whether "
                    "that was intended before this backup is rotated out.",
    "rto": "The restore is slower than the RTO: more jobs (on a server with more cores), faster storage, or revisit "
           "the RTO.",
}


class DrillSetupError(RunbookError):
    """The throwaway target could not be set up; the message says why."""


class ContainerTarget:
    """A new PostgreSQL container on a network of its own, labelled so a later drill can clean up after
    an interrupted one."""

    database = "drill"

    def __init__(self, image, port=None, docker_host=None):
        self.image = image
        self.port = port
        self.client = docker_client(docker_host)
        self.name = "stackops-drill-%s" % secrets.token_hex(4)
        self.container = None
        self.network = None
        self.runner = None

    def describe(self):
        return "container from %s" % self.image

    def remove_leftovers(self):
        """Remove what interrupted drills left: their owner is gone (killed, or the host rebooted), or their
        label's expiry has passed."""
        containers = live_containers(self.client, {"label": LABEL}, include_stopped=True)
        networks = self.client.networks.list(filters={"label": LABEL})
        for item in containers + networks:
            labels = item.attrs.get("Labels") or item.attrs.get("Config", {}).get("Labels") or {}
            born = float(labels.get(EXPIRES_LABEL, 0)) - LEFTOVER_AFTER
            if is_leftover(labels.get(OWNER_LABEL), born):
                try:
                    item.remove(force=True) if item in containers else item.remove()
                except docker_sdk().errors.DockerException:
                    pass

    def _ensure_image(self):
        try:
            self.client.images.get(self.image)
            return
        except docker_sdk().errors.DockerException:
            pass
        try:
            self.client.images.pull(self.image)
        except docker_sdk().errors.DockerException as exc:
            raise DrillSetupError("drill_image %s is not on this host and could not be pulled (%s); pull or build "
                                  "it first" % (self.image, getattr(exc, "explanation", None) or exc))

    def launch(self):
        """Start the container and return a runner in it; the server inside is still initialising (``ready``
        waits for it), so a backup can be checked and copied in meanwhile."""
        self.remove_leftovers()
        self._ensure_image()
        labels = {LABEL: "true", EXPIRES_LABEL: str(int(time.time() + LEFTOVER_AFTER)), OWNER_LABEL: owner_token()}
        try:
            self.network = self.client.networks.create(self.name, labels=labels)
            self.container = self.client.containers.run(
                self.image, name=self.name, detach=True, labels=labels, network=self.name,
                environment={"POSTGRES_PASSWORD": secrets.token_hex(16)},
                ports={"5432/tcp": ("127.0.0.1", self.port)} if self.port else None)
        except docker_sdk().errors.DockerException as exc:
            self.remove()
            what = getattr(exc, "explanation", None) or str(exc)
            if "port is already allocated" in what or "address already in use" in what:
                raise DrillSetupError("cannot start the drill container: port %s is in use (%s). Leftovers of drills "
                                      "that died were removed first, so a drill running now or another program "
                                      "holds it; choose another drill_port or leave it out" % (self.port, what))
            raise DrillSetupError("cannot start a container from %s: %s" % (self.image, what))
        self.runner = ContainerRunner(self.client, self.container.id, env={"PGUSER": "postgres"})
        return self.runner

    def ready(self):
        """Wait for the server in the container and create the drill database in it; returns its name."""
        runner = self.runner
        deadline = time.monotonic() + 120
        while True:
            # the image's init phase listens on the socket only; TCP answers once the real server is up
            rc, _out, _err = runner.run(["pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres"])
            if rc == 0:
                break
            self.container.reload()
            if self.container.status != "running" or time.monotonic() > deadline:
                logs = self.container.logs(tail=20).decode("utf-8", "replace")
                raise DrillSetupError("the drill container from %s did not come up (%s): %s"
                                      % (self.image, self.container.status, logs))
            time.sleep(0.5)
        admin = Admin(runner)
        try:
            admin.create(self.database)
        finally:
            admin.close()
        return self.database

    def remove(self):
        if self.container is None:
            # docker run creates the container before starting it: a start that failed leaves one behind
            try:
                self.container = self.client.containers.get(self.name)
            except docker_sdk().errors.DockerException:
                pass
        if self.container is not None:
            if self.runner is not None:
                # the restored files first, from inside: stopping a container syncs the filesystem its layer
                # lives on, which wrote the gigabytes just restored back to the disk only to delete them (4 s
                # of a drill of the 1.2 GB benchmark database; deleted first, their pages are dropped unwritten)
                try:
                    self.runner.run(["sh", "-c", 'test -n "$PGDATA" && rm -rf "$PGDATA"'])
                except RunbookError:
                    pass  # the container is gone or stopped: removing it is all there is to do
            try:
                self.container.remove(force=True, v=True)
            except docker_sdk().errors.DockerException:
                pass
            self.container = None
        if self.network is not None:
            try:
                self.network.remove()
            except docker_sdk().errors.DockerException:
                pass
            self.network = None


class ScratchDatabaseTarget:
    """A uniquely named scratch database on the server the connection options name."""

    def __init__(self, params, source_database):
        self.params = params
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
        self.database = "%s%s_%s" % (SCRATCH_PREFIX, stamp, secrets.token_hex(3))
        if self.database == source_database:  # cannot happen with this naming; said for the reader
            raise DrillSetupError("refusing to drill into the source database")
        self.context = None
        self.runner = None

    def describe(self):
        where = self.params.get("container") or self.params.get("login_host") or "the local server"
        return "scratch database %s on %s" % (self.database, where)

    def launch(self):
        """A runner for the server's client programs."""
        self.context = ClientContext(self.params)
        self.runner = self.context.__enter__()
        return self.runner

    def ready(self):
        """Create the scratch database (after removing those of drills that died); returns its name."""
        admin = Admin(self.runner)
        try:
            self._remove_leftovers(admin)
            admin.create(self.database)
            admin.session.query("COMMENT ON DATABASE %s IS %s;" % (
                ident(self.database), literal(OWNER_COMMENT + owner_token())))
        finally:
            admin.close()
        return self.database

    def _remove_leftovers(self, admin):
        rows = admin.session.query(
            "SELECT datname || '|' || coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
            "WHERE datname LIKE '%s%%';" % SCRATCH_PREFIX)
        for row in rows:
            name, _sep, comment = row.partition("|")
            stamp = name[len(SCRATCH_PREFIX):len(SCRATCH_PREFIX) + 14]
            try:
                born = datetime.datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=datetime.timezone.utc)
            except ValueError:
                continue
            owner = comment[len(OWNER_COMMENT):] if comment.startswith(OWNER_COMMENT) else None
            if is_leftover(owner, born.timestamp()):
                admin.terminate(name)
                admin.drop(name)

    def remove(self):
        if self.runner is not None:
            try:
                admin = Admin(self.runner)
                try:
                    admin.terminate(self.database)
                    admin.drop(self.database)
                finally:
                    admin.close()
            except CommandError:
                pass
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None


def _table_key(counts, table):
    """``users`` means ``public.users`` when that is what the restore holds."""
    return table if table in counts or "." in table else "public." + table


def grade(runner, database, manifest, report, critical_tables, spot_checks, source, rto_seconds, restored=None):
    """The failures of a restored database; fills ``report`` with what was found. ``restored``: its row
    counts when the restore took them (``_restore.restore_into``), else they are counted here."""
    failures = []
    restored = row_counts(runner, database) if restored is None else restored
    expected = manifest.get("row_counts") or {}
    report.update(tables=len(restored), rows=sum(restored.values()), restored_counts=restored,
                  expected_tables=len(expected) if expected else manifest.get("tables"))
    if is_external(manifest):
        # a backup another tool made has no row counts: graded by what it holds, and against the live source
        report["graded_against"] = ("the live source's tables and row counts" if source is not None else
                                    "tables present only (a backup made by another tool has no row counts)")
        expected = {}
        if not restored:
            failures.append(dict(kind="empty", message="the backup holds no tables"))
        missing = sorted(set(source or {}) - set(restored))
    else:
        report["graded_against"] = "the manifest's row counts"
        if not expected or not restored:
            failures.append(dict(kind="empty", message="the backup holds no tables (%d restored)" % len(restored)))
        missing = sorted(set(expected) - set(restored))
    if missing:
        failures.append(dict(kind="missing_tables", message="%d of %d tables missing after the restore: %s" % (
            len(missing), len(expected or source or {}), ", ".join(missing))))
    differences = {t: d for t, d in compare_counts(expected, restored).items() if t not in missing} if expected else {}
    report["differences"] = differences
    if differences:
        failures.append(dict(kind="row_counts", message="row counts differ from the manifest: %s" % ", ".join(
            "%s %s expected, %s restored" % (t, d["expected"], d["restored"]) for t, d in differences.items())))
    for table, minimum in (critical_tables or {}).items():
        have = restored.get(_table_key(restored, table), 0)
        if have < minimum:
            failures.append(dict(kind="critical_table", message="%s has %d rows, fewer than the %d required"
                                 % (table, have, minimum)))
    if spot_checks:
        session = PsqlSession(runner, database)
        try:
            for sql in spot_checks:
                try:
                    rows = [line for line in session.query(sql.rstrip().rstrip(";") + ";") if line.strip()]
                except CommandError as exc:
                    failures.append(dict(kind="spot_check", message="%s failed: %s" % (sql, exc)))
                    session.close()
                    session = PsqlSession(runner, database)
                    continue
                if not rows:
                    failures.append(dict(kind="spot_check", message="%s returned no rows" % sql))
        finally:
            session.close()
    if source is not None:
        report["source_counts"] = source
        drift = ["%s: %s in the backup, %s in the source now" % (t, n, source.get(t))
                 for t, n in sorted(restored.items()) if source.get(t) is None or source[t] < n]
        if drift:
            failures.append(dict(kind="source_drift", message="the source has fewer rows than the backup "
                                 "(deleted since?): %s" % "; ".join(drift)))
    if rto_seconds is not None and report["restore_seconds"] > rto_seconds:
        failures.append(dict(kind="rto", message="the restore took %.2fs, over the RTO of %gs"
                             % (report["restore_seconds"], rto_seconds)))
    return failures


MARKDOWN = """# Restore drill: {database}, {date}

| Field | Value |
|---|---|
| Result | **{result}** |
| Performed by | {performed_by} |
| Backup used | {backup} ({size}, {format}/{compression}, taken {taken}) |
| Backup location | {location} |
| Restore target | {target} |
| Restore duration | {restore_seconds} (RTO target: {rto}) |
| Tables restored | {tables}/{expected_tables} |
| Graded against | {graded_against} |
| Row counts match | {counts_match} |
| Rows restored | {rows} |
| Roles restored first | {globals} |
| Drill duration | {duration}s |

## Issues found

{issues}

## Corrective action suggested

{actions}

## Row counts

| Table | Backup manifest | Restored |{source_header}
|---|---:|---:|{source_rule}
{count_rows}
"""


def image_for_backup(image, manifest):
    """``drill_image`` with ``{major}`` replaced by the major version of the server the backup was taken from, so
    a PostgreSQL 16 dump is drilled on 16 (an older server cannot read a newer one's dump)."""
    if "{major}" not in image:
        return image
    version = str(manifest.get("server_version") or "")
    major = version.split(".", 1)[0].split()[0] if version else ""
    if not major.isdigit():
        raise DrillSetupError("drill_image %s needs the backup's server version, and the manifest of %s has none: "
                              "name the image's version" % (image, manifest.get("name")))
    return image.replace("{major}", major)


def render_markdown(report):
    manifest = report.get("manifest") or {}
    expected = manifest.get("row_counts") or {}
    restored = report.get("restored_counts") or {}
    source = report.get("source_counts")
    tables = sorted(set(expected) | set(restored))
    rows = []
    for table in tables:
        cells = [table, str(expected.get(table, "-")), str(restored.get(table, "-"))]
        if source is not None:
            cells.append(str(source.get(table, "-")))
        rows.append("| %s |" % " | ".join(cells))
    differences = report.get("differences") or {}
    return MARKDOWN.format(
        database=report["database"], date=report["started_at"], result="PASSED" if report["passed"] else "FAILED",
        performed_by=report.get("performed_by") or "-",
        graded_against=report.get("graded_against") or "-",
        globals=("%s (created: %s)" % (report["globals"]["backup"], ", ".join(report["globals"]["created_roles"]) or "none")
                 if report.get("globals") else "no (restored without owners and grants)"),
        backup=report.get("backup") or "none found", size=size_text(manifest["size"]) if manifest.get("size") is not None else "size unknown",
        format=manifest.get("format", "-"), compression=manifest.get("compression", "-"),
        taken=manifest.get("finished_at", "-"), location=report.get("location", "-"),
        target=report.get("target") or "not started",
        restore_seconds="%.1fs" % report["restore_seconds"] if report.get("restore_seconds") is not None else "-",
        rto="%gs" % report["rto_seconds"] if report.get("rto_seconds") else "none set",
        tables=report.get("tables", 0), expected_tables=report.get("expected_tables") or "-",
        counts_match="n/a (the backup has no row counts)" if is_external(manifest) else
        "yes" if restored and not differences and expected else "no" + (
            " (%s)" % ", ".join(sorted(differences)) if differences else ""),
        rows=report.get("rows", 0), duration=report.get("duration"),
        issues="\n".join("- **%s**: %s" % (f["kind"], f["message"]) for f in report["failures"]) or "None.",
        actions="\n".join("- %s" % a for a in dict.fromkeys(f["corrective_action"] for f in report["failures"]))
        or "None: keep drilling on schedule.",
        source_header=" Source now |" if source is not None else "", source_rule="---:|" if source is not None else "",
        count_rows="\n".join(rows) or "| (no tables) | - | - |")


def write_logs(log_dir, report, when):
    """The drill log as markdown and JSON, and a line in history.jsonl. Returns the two paths."""
    os.makedirs(log_dir, mode=0o750, exist_ok=True)
    stem = "drill_%s_%s" % (report["database"], when.strftime(mf.TIMESTAMP_FORMAT))
    md_path = os.path.join(log_dir, stem + ".md")
    json_path = os.path.join(log_dir, stem + ".json")
    public = {k: v for k, v in report.items() if k != "manifest"}
    public["manifest_name"] = report.get("backup")
    with open(md_path, "w") as fh:
        fh.write(render_markdown(report))
    with open(json_path, "w") as fh:
        json.dump(public, fh, indent=2, sort_keys=True)
    summary = dict(time=report["started_at"], database=report["database"], backup=report.get("backup"),
                   passed=report["passed"], restore_seconds=report.get("restore_seconds"),
                   rto_seconds=report.get("rto_seconds"), failures=[f["kind"] for f in report["failures"]], log=md_path)
    append_line(os.path.join(log_dir, "history.jsonl"), summary, mode=0o644)
    return md_path, json_path
