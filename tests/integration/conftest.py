"""Real services for the integration tests, started once per session and torn down after:
a PostgreSQL cluster on loopback (initdb), a PostgreSQL container from the project's image, and an
S3 API server (moto). Plus helpers that run our modules exactly as Ansible does."""

import contextlib
import datetime
import json
import os
import shutil
import signal
import socket
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
MODULES = os.path.join(ROOT, "plugins", "modules")
SEED_SQL = os.path.join(ROOT, "tools", "sandbox", "initdb", "01-schema-and-data.sql")
TEST_LABEL = "io.stackops.test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir():
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


def postgres_image():
    image = os.environ.get("STACKOPS_POSTGRES_IMAGE")
    env_file = os.path.join(ROOT, ".build", "images.env")
    if not image and os.path.exists(env_file):
        for line in open(env_file):
            if line.startswith("STACKOPS_POSTGRES_IMAGE="):
                image = line.split("=", 1)[1].strip()
    return image or "postgres:15"


# ---------------------------------------------------------------- running our modules

class ModuleRun:
    """Runs a module of this collection the way Ansible does: a Python process given
    {"ANSIBLE_MODULE_ARGS": ...}, answering JSON on stdout."""

    def __init__(self, name, args, check_mode=False):
        self.name = name
        payload = dict(args)
        if check_mode:
            payload["_ansible_check_mode"] = True
        self.argsfile = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, self.argsfile)
        self.argsfile.close()
        env = dict(os.environ, PYTHONPATH=COLLECTIONS)
        self.proc = subprocess.Popen([sys.executable, os.path.join(MODULES, name + ".py"), self.argsfile.name],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def result(self, timeout=600):
        out, err = self.proc.communicate(timeout=timeout)
        os.unlink(self.argsfile.name)
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError("module %s printed no JSON (rc %s):\n%s\n%s"
                                 % (self.name, self.proc.returncode, out.decode(), err.decode()))


def run_module(name, args, check_mode=False, timeout=600):
    return ModuleRun(name, args, check_mode).result(timeout)


# ---------------------------------------------------------------- PostgreSQL on the host

class HostPostgres:
    """A throwaway cluster on 127.0.0.1 with scram passwords over TCP."""

    password = "host-superuser-" + uuid.uuid4().hex[:12]

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="stackops-pg-")
        self.port = free_port()
        self.bindir = pg_bindir()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as fh:
            fh.write(self.password + "\n")
        if self.as_postgres:
            shutil.chown(pwfile, "postgres")
        self._run(["initdb", "-D", self.data, "-U", "postgres", "--pwfile", pwfile, "--auth-local=trust",
                   "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        os.unlink(pwfile)
        self._run(["pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                   "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (self.port, self.dir), "start"])

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    def _run(self, argv):
        subprocess.run(self.as_postgres + [os.path.join(self.bindir, argv[0])] + argv[1:], check=True,
                       capture_output=True)

    def env(self):
        return dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER="postgres",
                    PGPASSWORD=self.password)

    def psql(self, database, sql, check=True):
        proc = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql],
                              capture_output=True, text=True, env=self.env(), check=False)
        if check and proc.returncode != 0:
            raise AssertionError("psql failed: %s" % proc.stderr)
        return proc.stdout.strip()

    def psql_file(self, database, path):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", path], check=True,
                       capture_output=True, env=self.env())

    def connection(self):
        """Module arguments that connect to this cluster."""
        return dict(login_host="127.0.0.1", login_port=self.port, login_user="postgres",
                    login_password=self.password)

    def stop(self):
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(["pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


def exact_counts(run_sql, database):
    """{"schema.table": rows} of the ordinary tables of a database, counted now."""
    sql = ("SELECT string_agg(format('SELECT %L AS t, count(*) AS n FROM %I.%I', n.nspname || '.' || c.relname, "
           "n.nspname, c.relname), ' UNION ALL ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
           "AND n.nspname !~ '^pg_toast'")
    union = run_sql(database, sql)
    if not union:
        return {}
    rows = run_sql(database, "SELECT json_object_agg(t, n) FROM (%s) x" % union)
    return json.loads(rows)


@pytest.fixture(scope="session")
def host_pg():
    pg = HostPostgres()
    try:
        pg.psql("postgres", "CREATE DATABASE app")
        pg.psql_file("app", SEED_SQL)
        yield pg
    finally:
        pg.stop()


# ---------------------------------------------------------------- PostgreSQL in a container

class ContainerPostgres:
    password = "container-superuser-" + uuid.uuid4().hex[:12]

    def __init__(self):
        self.name = "stackops-test-pg-%s" % uuid.uuid4().hex[:8]
        subprocess.run(["docker", "run", "-d", "--name", self.name, "--label", TEST_LABEL + "=1",
                        "-e", "POSTGRES_PASSWORD=" + self.password, "-e", "POSTGRES_DB=app", postgres_image()],
                       check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # the init phase's server listens on the socket only: TCP answers once it is really up
            if subprocess.run(["docker", "exec", self.name, "pg_isready", "-h", "127.0.0.1", "-U", "postgres"],
                              capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.5)
        else:
            logs = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, check=False)
            self.stop()
            raise RuntimeError("postgres container did not start:\n" + logs.stdout + logs.stderr)

    def psql(self, database, sql, check=True):
        proc = subprocess.run(["docker", "exec", self.name, "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                               "-U", "postgres", "-d", database, "-c", sql], capture_output=True, text=True,
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError("psql in container failed: %s" % proc.stderr)
        return proc.stdout.strip()

    def psql_file(self, database, path):
        with open(path, "rb") as fh:
            subprocess.run(["docker", "exec", "-i", self.name, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-U", "postgres", "-d", database], stdin=fh, check=True, capture_output=True)

    def stop(self):
        subprocess.run(["docker", "rm", "-f", "-v", self.name], capture_output=True, check=False)


@pytest.fixture(scope="session")
def container_pg():
    pg = ContainerPostgres()
    try:
        pg.psql_file("app", SEED_SQL)
        yield pg
    finally:
        pg.stop()


# ---------------------------------------------------------------- S3 (moto's server: the real S3 HTTP API)

class S3Server:
    access_key = "test-access-key-id"
    secret_key = "test-secret-access-key-" + uuid.uuid4().hex[:8]

    def __init__(self):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
        self.proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        import boto3
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.bucket = "backups"
        self.client.create_bucket(Bucket=self.bucket)

    def options(self, prefix):
        return dict(bucket=self.bucket, prefix=prefix, endpoint_url=self.endpoint, region="us-east-1",
                    access_key=self.access_key, secret_key=self.secret_key)

    def keys(self, prefix):
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in resp.get("Contents", []))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3():
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_prefix():
    return "test/%s" % uuid.uuid4().hex[:8]


@pytest.fixture
def dest(tmp_path):
    return str(tmp_path / "backups")


# ---------------------------------------------------------------- restoring a backup independently

def restore_into(pg, backup_path, manifest, database):
    """Restore a backup into a new database of the host cluster with the stock tools (zstd, gzip,
    psql, pg_restore): proof that it restores, independent of our own code."""
    pg.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % database)
    pg.psql("postgres", 'CREATE DATABASE "%s"' % database)
    env = pg.env()
    fmt, compression = manifest["format"], manifest["compression"]
    if fmt == "directory":
        subprocess.run(["pg_restore", "--exit-on-error", "-j", "2", "-d", database, backup_path], check=True,
                       capture_output=True, env=env)
        return
    decompress = {"zstd": ["zstd", "-dc", backup_path], "gzip": ["gzip", "-dc", backup_path],
                  "none": ["cat", backup_path]}[compression]
    consumer = (["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database] if fmt == "plain"
                else ["pg_restore", "--exit-on-error", "-d", database])
    producer = subprocess.Popen(decompress, stdout=subprocess.PIPE, env=env)
    restored = subprocess.run(consumer, stdin=producer.stdout, capture_output=True, env=env, check=False)
    producer.stdout.close()
    assert producer.wait() == 0, "decompression failed"
    assert restored.returncode == 0, restored.stderr.decode()


def pids_of(word, owner=None):
    """Processes whose command line contains ``word`` - with ``owner`` (a predicate on the pid) only this test's:
    other suites may run the same programs at the same time (CI runs the Molecule scenarios beside this one)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or (owner is not None and not owner(int(pid))):
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if word in cmdline:
            found.append((int(pid), cmdline))
    return found


def descends_from(ancestor):
    """A predicate: whether a pid is ``ancestor`` or one of its descendants."""
    def check(pid):
        while pid > 1:
            if pid == ancestor:
                return True
            try:
                with open("/proc/%d/stat" % pid) as fh:
                    pid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                return False
        return False
    return check


def inside_container(name):
    """A predicate: whether a pid runs in the container ``name`` (its cgroup names the container's id)."""
    full_id = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True,
                             check=True).stdout.strip()

    def check(pid):
        try:
            with open("/proc/%d/cgroup" % pid) as fh:
                return full_id in fh.read()
        except OSError:
            return False
    return check


def container_tmp(pg):
    """What is in the /tmp of the test's container ``pg``."""
    return subprocess.run(["docker", "exec", pg.name, "ls", "-A", "/tmp"], capture_output=True, text=True,
                          check=True).stdout.split()


DRILL_LABEL = "io.stackops.runbook.drill"


def drill_objects(owner):
    """Ids of the restore drills' containers and networks whose owner (the pid in their owner label) satisfies
    ``owner``: CI runs other suites at the same time, whose drills are not this test's business."""
    found = []
    for listing, template in ((["ps", "-aq"], "{{index .Config.Labels \"%s\"}}"),
                              (["network", "ls", "-q"], "{{index .Labels \"%s\"}}")):
        ids = subprocess.run(["docker"] + listing + ["--filter", "label=" + DRILL_LABEL], capture_output=True,
                             text=True, check=True).stdout.split()
        for object_id in ids:
            token = subprocess.run(["docker", listing[0] if listing[0] == "network" else "container", "inspect",
                                    "-f", template % (DRILL_LABEL + ".owner"), object_id],
                                   capture_output=True, text=True, check=False).stdout.strip()
            parts = token.split("/")
            pid = int(parts[3]) if len(parts) == 5 and parts[3].isdigit() else None
            if pid is None or owner(pid):
                found.append(object_id)
    return found


def drill_leftovers():
    """Drill containers and networks left by a run that is over (a running drill's owner is alive)."""
    return drill_objects(lambda pid: not os.path.exists("/proc/%d" % pid))


def wait_for(predicate, timeout=30, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


class TableLock:
    """Holds ACCESS EXCLUSIVE on a table in an open transaction, so a pg_dump blocks on it: a dump
    that stays in flight for as long as a test needs."""

    def __init__(self, pg, database, table=None):
        """With no table, just a connected session idle in a transaction (an application's connection)."""
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=pg.env(), text=True)
        statement = "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE" % table if table else "SET application_name = 'demo-api'"
        self.proc.stdin.write("BEGIN;\n%s;\n\\echo locked\n" % statement)
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("ROLLBACK;\n\\q\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass  # the session was terminated
            self.proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def age_backup(dest, name, days):
    """Make a backup look ``days`` old: its name carries its time, as do its manifest's fields."""
    with open(os.path.join(dest, name + ".manifest.json")) as fh:
        manifest = json.load(fh)
    label = name.rsplit("_", 1)[0]
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    new_name = "%s_%s" % (label, when.strftime("%Y%m%dT%H%M%SZ"))
    new_file = manifest["file"].replace(name, new_name)
    os.rename(os.path.join(dest, manifest["file"]), os.path.join(dest, new_file))
    manifest.update(name=new_name, file=new_file)
    with open(os.path.join(dest, new_name + ".manifest.json"), "w") as fh:
        json.dump(manifest, fh)
    os.unlink(os.path.join(dest, name + ".manifest.json"))
    return new_name


# ---------------------------------------------------------------- playbooks and roles, as users run them

def run_playbook(playbook, inventory, extra_vars, check=False, verbosity=0, callback="ansible.builtin.json"):
    """(returncode, stdout, stderr) of ansible-playbook; stdout is parsed JSON with the json callback."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_STDOUT_CALLBACK=callback,
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), playbook, "-i", inventory,
            "-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    out = json.loads(proc.stdout) if callback == "ansible.builtin.json" else proc.stdout
    return proc.returncode, out, proc.stderr


def local_inventory(tmp_path, group="db"):
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"children": {group: {"hosts": {"db1": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
    return str(path)


def failures(output):
    """The messages of the failed tasks of a play's JSON output, for assertion messages."""
    found = []
    for play in output.get("plays", []):
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") and not result.get("skipped"):
                    found.append("%s on %s: %s" % (task["task"]["name"], host, result.get("msg")))
    return "\n".join(found) or "no failed task"


def task_results(output, task_name, host="db1"):
    """The result of the task named ``task_name`` (role tasks match without their role prefix)."""
    for play in output["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            if name == task_name or name.endswith(" : " + task_name):
                return task["hosts"][host]
    raise AssertionError("no task %r" % task_name)


# ---------------------------------------------------------------- the sandbox's compose stack, for deploys

def images_env():
    values = {}
    with open(os.path.join(ROOT, ".build", "images.env")) as fh:
        for line in fh:
            key, _sep, value = line.strip().partition("=")
            values[key] = value
    return values


class Stack:
    """A copy of the sandbox's compose project (tools/sandbox) under a unique name, with its own ports."""

    def __init__(self, base):
        self.name = "stackops-deploy-" + uuid.uuid4().hex[:8]
        self.dir = str(base / "project")
        shutil.copytree(os.path.join(ROOT, "tools", "sandbox"), self.dir,
                        ignore=shutil.ignore_patterns(".env"))
        self.port, self.pg_port, self.redis_port = free_port(), free_port(), free_port()
        self.postgres = self.name + "-postgres"
        self.ledger = str(base / "releases.jsonl")
        env = images_env()
        self.env_file = os.path.join(self.dir, ".env")
        with open(self.env_file, "w") as fh:
            fh.write("# the project's env file, as users keep it\nSANDBOX_NAME=%s\nSANDBOX_API_PORT=%d\n"
                     "SANDBOX_POSTGRES_PORT=%d\nSANDBOX_REDIS_PORT=%d\nSTACKOPS_REDIS_IMAGE=%s\n"
                     "STACKOPS_POSTGRES_IMAGE=%s\nSTACKOPS_PYTHON_IMAGE=%s\n"
                     "SANDBOX_POSTGRES_PASSWORD=deploy-test-password\nSANDBOX_APP_DB_PASSWORD=deploy-test-password\n"
                     "APP_VERSION=1.0.0\n" % (
                         self.name, self.port, self.pg_port, self.redis_port, env["STACKOPS_REDIS_IMAGE"],
                         env["STACKOPS_POSTGRES_IMAGE"],
                         env["STACKOPS_PYTHON_IMAGE"]))
        self.url = "http://127.0.0.1:%d" % self.port

    def remove_by_label(self):
        label = "label=com.docker.compose.project=" + self.name
        for what in (["ps", "-aq"], ["volume", "ls", "-q"], ["network", "ls", "-q"]):
            ids = subprocess.run(["docker"] + what + ["--filter", label], capture_output=True, text=True,
                                 check=False).stdout.split()
            if ids:
                remove = ["rm", "-f"] if what[0] == "ps" else [what[0], "rm"]
                subprocess.run(["docker"] + remove + ids, capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", self.name + "-uploads"], capture_output=True, check=False)

    def compose(self, *args):
        return subprocess.run([os.path.join(ROOT, "tools", "compose.sh"), "-p", self.name] + list(args),
                              cwd=self.dir, capture_output=True, text=True, check=False)

    def psql(self, sql):
        """Rows of ``sql`` in the app database, through psql in the postgres container."""
        out = subprocess.run(["docker", "exec", self.postgres, "psql", "-U", "postgres", "-d", "app", "-AtX", "-c", sql],
                             capture_output=True, text=True, check=True).stdout
        return [line.split("|") for line in out.splitlines()]

    def version(self):
        with urllib.request.urlopen(self.url + "/api/version", timeout=5) as response:
            return json.load(response)["version"]

    def api_containers(self):
        out = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" + self.name,
                              "--filter", "label=com.docker.compose.service=api"],
                             capture_output=True, text=True, check=True).stdout
        return sorted(out.split())

    def ledger_entries(self):
        with open(self.ledger) as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def env_version(self):
        with open(self.env_file) as fh:
            return [line.split("=", 1)[1].strip() for line in fh if line.startswith("APP_VERSION=")][-1]


def answers(stack):
    """The version the stack's API answers through its proxy, or None."""
    try:
        return stack.version()
    except OSError:
        return None


@contextlib.contextmanager
def running_stack(base, **env):
    """The sandbox's stack (postgres, the API at 1.0.0, the proxy) under a unique name, removed afterwards;
    ``env`` adds variables to its env file (SANDBOX_STRICT_SCHEMA="1"...)."""
    stack = Stack(base)
    with open(stack.env_file, "a") as fh:
        fh.writelines("%s=%s\n" % item for item in env.items())
    up = stack.compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        wait_for(lambda: answers(stack) == "1.0.0", timeout=120, interval=0.5)
        # the API answers before the database is done with its init phase (a server on the socket only, then
        # restarted): TCP answers once the real server is up, as in ContainerPostgres
        wait_for(lambda: subprocess.run(["docker", "exec", stack.postgres, "pg_isready", "-q", "-h", "127.0.0.1",
                                         "-U", "postgres"], capture_output=True, check=False).returncode == 0,
                 timeout=120, interval=0.5)
        yield stack
    finally:
        if os.path.isdir(stack.dir):
            stack.compose("down", "-v", "--remove-orphans")
        else:  # a test destroyed the project directory (and maybe failed to bring it back)
            stack.remove_by_label()


# ---------------------------------------------------------------- the fault matrix

def fault(number, what, does, kept):
    """Marks a test as the proof of one row of the README's fault matrix (tools/fault_matrix.py reads these
    decorators, and tests/unit/test_fault_matrix.py keeps the README's table equal to them)."""
    def mark(test):
        test.fault = (number, what, does, kept)
        return test
    return mark


# ---------------------------------------------------------------- what the alerting rules and the dashboard read

RULES = os.path.join(ROOT, "observability", "prometheus", "stackops_runbook.rules.yml")
DASHBOARD = os.path.join(ROOT, "observability", "grafana", "stackops_runbook.json")


def observability_queries():
    """Every PromQL expression of the alerting rules and of the dashboard's panels and annotations."""
    import yaml
    with open(RULES) as fh:
        rules = yaml.safe_load(fh)
    with open(DASHBOARD) as fh:
        dashboard = json.load(fh)
    queries = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    queries += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [item["expr"] for item in dashboard["annotations"]["list"] if item.get("expr")]
    return queries


def observability_metric_names(prefix="stackops_"):
    """The metric names (of ``prefix``) the rules and the dashboard read (outside string literals: label values and
    regular expressions such as the textfile names StackopsJobNotRunning matches)."""
    return {name for query in observability_queries()
            for name in re.findall(r"\b(%s[a-z_]+)\b" % prefix, re.sub(r'"[^"]*"', '""', query))}
