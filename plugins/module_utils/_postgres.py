# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

PostgreSQL plumbing shared by every module: the connection options (named as in
community.postgresql), the libpq environment they become (a password never goes into argv), the
client runner (host or container), and a psql session used for versions, snapshots and row counts."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError, LocalRunner
from ansible_collections.stackops.runbook.plugins.module_utils._docker import (
    ContainerRunner,
    container_argument_spec,
    docker_client,
)

SSL_MODES = ["allow", "disable", "prefer", "require", "verify-ca", "verify-full"]
SENTINEL = "__stackops_runbook_end__"

# ordinary tables of the database, leaving out system schemas and tables owned by extensions
USER_TABLES_SQL = """
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
"""
# (what comes before and after any conditions a caller adds to the user tables': "  AND ...\n")
EXACT_COUNTS_SQL = ("SELECT format('SELECT json_build_array(%%L, count(*)) FROM %%I.%%I', "
                    "n.nspname || '.' || c.relname, n.nspname, c.relname) %s" % USER_TABLES_SQL, "ORDER BY 1 \\gexec")
ESTIMATED_COUNTS_SQL = ("SELECT json_build_array(n.nspname || '.' || c.relname, "
                        "CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END) %s" % USER_TABLES_SQL,
                        "ORDER BY n.nspname, c.relname;")


def postgres_common_argument_spec():
    """Connection options shared by every module (see the stackops.runbook.postgres doc fragment)."""
    spec = dict(
        login_host=dict(type="str"),
        login_port=dict(type="int", default=5432),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True),
        login_unix_socket=dict(type="str"),
        ssl_mode=dict(type="str", default="prefer", choices=SSL_MODES),
        ca_cert=dict(type="path"),
        bin_dir=dict(type="path"),
    )
    spec.update(container_argument_spec())
    return spec


# exit codes of a program that could not be started (not found, not executable): the shell's and docker exec's
EXEC_FAILED = (126, 127)


class PostgresError(RunbookError):
    """A PostgreSQL client step failed; the message says what to do."""


def _passfile_escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")


def passfile_line(password):
    return "*:*:*:*:%s\n" % _passfile_escape(password)


def libpq_env(params, secrets_dir=None, passfile=None, connect_timeout=10):
    """The libpq environment for the connection options. On the host the password goes to a 0600
    passfile: ``passfile`` (a path the caller made, see SecretFile) or a new one in ``secrets_dir``;
    inside a container it goes to the exec's environment. Never argv."""
    env = {"PGAPPNAME": "stackops.runbook", "PGCONNECT_TIMEOUT": str(max(1, int(connect_timeout)))}
    if params.get("login_host"):
        env["PGHOST"] = params["login_host"]
    elif params.get("login_unix_socket"):
        env["PGHOST"] = params["login_unix_socket"]
    if params.get("login_port"):
        env["PGPORT"] = str(params["login_port"])
    if params.get("login_user"):
        env["PGUSER"] = params["login_user"]
    if params.get("ssl_mode"):
        env["PGSSLMODE"] = params["ssl_mode"]
    if params.get("ca_cert"):
        env["PGSSLROOTCERT"] = params["ca_cert"]
    password = params.get("login_password")
    if password:
        if params.get("container"):
            env["PGPASSWORD"] = password
        else:
            if passfile is None:
                passfile = os.path.join(secrets_dir, "pgpass")
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(passfile_line(password))
            env["PGPASSFILE"] = passfile
    return env


SECRET_DIR_PREFIX = "stackops-runbook-"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


_SWEPT = []  # once per process: a health probe opens a connection every round


def sweep_secret_dirs_once():
    if not _SWEPT:
        _SWEPT.append(True)
        sweep_secret_dirs_once()


def sweep_secret_dirs(tmpdir=None):
    """Remove the secret directories of runs that died (SIGKILL, OOM, a lost SSH connection) before they
    could clean up: ``stackops-runbook-PID-*`` whose process is gone, and the pid-less ones earlier
    versions made. Returns the paths removed."""
    tmpdir = tmpdir or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(tmpdir)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(SECRET_DIR_PREFIX):
            continue
        path = os.path.join(tmpdir, name)
        owner = name[len(SECRET_DIR_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and _pid_alive(int(owner)):
            continue
        if os.path.isdir(path) and not os.path.islink(path) and os.stat(path).st_uid == os.geteuid():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class SecretFile:
    """A small secret (a passfile) that child processes read by path and that never outlives this process.

    On Linux it is a memfd: no name in any filesystem, gone with the last process holding it, even after
    SIGKILL; children get the descriptor (``fds``) and read it as ``/dev/fd/N``. Elsewhere it is a 0600 file
    in a directory named for this process, which ``sweep_secret_dirs`` removes once the process is gone."""

    def __init__(self, data):
        self.fd = None
        self.directory = None
        if hasattr(os, "memfd_create"):
            try:
                self.fd = os.memfd_create("stackops-runbook-secret")
            except OSError:
                self.fd = None
        if self.fd is not None:
            os.fchmod(self.fd, 0o600)  # libpq ignores a passfile that others could read
            os.write(self.fd, data.encode())
            self.path = "/dev/fd/%d" % self.fd
        else:
            self.directory = tempfile.mkdtemp(prefix="%s%d-" % (SECRET_DIR_PREFIX, os.getpid()))
            self.path = os.path.join(self.directory, "secret")
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(data)

    @property
    def fds(self):
        return (self.fd,) if self.fd is not None else ()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


class ClientContext:
    """The runner for the client programs plus the passfile it reads; use as a context manager so the
    passfile never outlives the task (and, being a memfd, not even a killed task)."""

    def __init__(self, params, connect_timeout=10):
        self.params = params
        self.connect_timeout = connect_timeout
        self.secret = None
        self.runner = None

    def __enter__(self):
        sweep_secret_dirs()
        try:
            password = self.params.get("login_password")
            if password and not self.params.get("container"):
                self.secret = SecretFile(passfile_line(password))
            env = libpq_env(self.params, passfile=self.secret.path if self.secret else None,
                            connect_timeout=self.connect_timeout)
            if self.params.get("container"):
                client = docker_client(self.params.get("docker_host"))
                self.runner = ContainerRunner(client, self.params["container"], self.params.get("container_user"),
                                              env)
            else:
                self.runner = LocalRunner(env, self.params.get("bin_dir"), self.secret.fds if self.secret else ())
        except BaseException:
            self._remove_secrets()
            raise
        return self.runner

    def __exit__(self, *exc):
        self._remove_secrets()
        return False

    def _remove_secrets(self):
        if self.secret is not None:
            self.secret.close()
            self.secret = None


def literal(value):
    """``value`` as an SQL string literal."""
    return "'%s'" % value.replace("'", "''")


def ident(value):
    """``value`` as a quoted SQL identifier."""
    return '"%s"' % value.replace('"', '""')


def psql_argument(value):
    """``value`` as one argument of a psql meta-command such as ``\\connect``: single-quoted, where psql also
    reads backslash escapes (so ``literal`` would not do)."""
    return "'%s'" % value.replace("\\", "\\\\").replace("'", "\\'")


def client_version(runner, program):
    """(major, full version string) of a client program such as pg_dump."""
    rc, out, err = runner.run([program, "--version"])
    if rc != 0:
        raise PostgresError("%s is not usable %s: %s. Install the PostgreSQL client (postgresql-client) or set "
                            "bin_dir." % (program, "in container" if runner.kind == "container" else "on this host",
                                          err.strip() or "exit code %s" % rc))
    text = out.decode().strip()
    match = re.search(r"(\d+)(?:\.(\d+))?", text)
    return (int(match.group(1)) if match else 0), text


class PsqlSession:
    """An interactive psql (-X -A -t) we send SQL to and read rows from, line by line. One session
    holds one transaction open, which is what exporting a snapshot to pg_dump needs."""

    def __init__(self, runner, database):
        self.runner = runner
        argv = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", "-d", database]
        # whether psql is there is asked only when it did not start: asking first cost a container an exec
        # (about 80 ms of CPU) before every session
        try:
            self.proc = runner.session(argv)
        except OSError:
            self._missing_psql()
            raise
        self.closed = False

    def _missing_psql(self):
        """Raise the error that says how to get psql, when it is missing."""
        if not self.runner.has_program("psql"):
            raise PostgresError("psql is not available %s; install the PostgreSQL client or set bin_dir"
                                % ("in the container" if self.runner.kind == "container" else "on this host"))

    def query(self, sql):
        """Run ``sql``; return the output lines."""
        if self.closed:
            # psql stops at the first error (ON_ERROR_STOP): a caller that goes on needs a new session
            raise PostgresError("the psql session ended at an earlier error; nothing more was sent on it")
        try:
            self.proc.write(("%s\n\\echo %s\n" % (sql, SENTINEL)).encode())
        except OSError:
            pass  # psql exited (failed to connect); its stderr says why
        lines = []
        while True:
            line = self.proc.readline()
            if not line:
                rc, err = self.proc.close()
                self.closed = True
                if rc in EXEC_FAILED:
                    self._missing_psql()
                raise CommandError(["psql"], rc, err or self.proc.stderr_text())
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text == SENTINEL:
                return lines
            lines.append(text)

    def scalar(self, sql):
        lines = self.query(sql)
        return lines[0] if lines else None

    def server_version(self):
        return self.scalar("SELECT current_setting('server_version');")

    def export_snapshot(self):
        """Begin a read-only repeatable-read transaction and export its snapshot for pg_dump."""
        return self.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSELECT pg_export_snapshot();")[0]

    def row_counts(self, mode, tables=None, leaving_out=()):
        """{"schema.table": rows} exactly (in this session's snapshot) or as planner estimates: of every user
        table, or of those of ``tables`` ((schema, name) pairs) when given, leaving out the "schema.table"
        keys of ``leaving_out``."""
        condition = ""
        if tables is not None:
            if not tables:
                return {}
            condition += "  AND (n.nspname, c.relname) IN (%s)\n" % ", ".join(
                "(%s, %s)" % (literal(schema), literal(name)) for schema, name in tables)
        if leaving_out:
            condition += "  AND n.nspname || '.' || c.relname NOT IN (%s)\n" % ", ".join(
                literal(key) for key in leaving_out)
        before, after = EXACT_COUNTS_SQL if mode == "exact" else ESTIMATED_COUNTS_SQL
        sql = before + condition + after
        counts = {}
        for line in self.query(sql):
            if line.strip():
                table, rows = json.loads(line)
                counts[table] = rows
        return counts

    def kill(self):
        """End psql now (from another thread, when a deadline passed): the reader sees the end of its output."""
        self.proc.kill()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.proc.write(b"\\q\n")
            except OSError:
                pass
            self.proc.close()
