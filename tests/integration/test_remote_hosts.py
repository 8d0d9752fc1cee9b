"""Every playbook over SSH, against fresh Debian 12 servers: containers of a bare image with sshd (key
authentication, on a loopback port), the host's docker socket mounted as a server running its own compose stack,
and nothing of the collection's libraries until the prerequisites role installs them from Debian's packages. The
collection is the one a user gets: built with ``ansible-galaxy collection build``, installed from the tarball,
run by FQCN. The db host, the two app hosts and the controller are different machines in the inventory, as in
inventories/example."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import uuid

import pytest

from conftest import (
    ROOT,
    TEST_LABEL,
    S3Server,
    free_port,
    images_env,
    local_inventory,
    run_playbook,
    postgres_image,
    running_stack,
    wait_for,
)

from test_disaster_recovery import uploads_listing
from test_encryption import Key

BIN = os.path.dirname(sys.executable)
TIMES = {}


def report(capsys, line):
    with capsys.disabled():
        print("\n[remote] " + line)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """The collection built into a tarball and installed from it (not the repository's link)."""
    build = tmp_path_factory.mktemp("build")
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(build), ROOT],
                   check=True, capture_output=True)
    (tarball,) = glob.glob(str(build / "*.tar.gz"))
    installed = tmp_path_factory.mktemp("installed")
    # --force and a path of its own: the repository's link in .build/collections must not count as installed
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p",
                    str(installed), tarball], check=True, capture_output=True,
                   env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed)))
    assert os.path.isfile(os.path.join(str(installed), "ansible_collections", "stackops", "runbook", "MANIFEST.json"))
    return dict(tarball=tarball, path=str(installed))


class SshHost:
    """A fresh server: the bare Debian image with sshd on 127.0.0.1:PORT, the host's docker socket, and the
    folders of the stacks it runs mounted at the same paths (compose resolves bind mounts on the engine's side)."""

    def __init__(self, role, public_key, private_key, folders):
        self.name = "stackops-ssh-%s-%s" % (role, uuid.uuid4().hex[:6])
        self.port = free_port()
        self.private_key = private_key
        volumes = ["-v", "%s:/run/stackops/authorized_keys:ro" % public_key,
                   "-v", "/var/run/docker.sock:/var/run/docker.sock"]
        for folder in folders:
            volumes += ["-v", "%s:%s" % (folder, folder)]
        subprocess.run(["docker", "run", "-d", "--name", self.name, "--label", TEST_LABEL + "=1", "--network", "host",
                        "-e", "SSH_PORT=%d" % self.port] + volumes + [images_env()["STACKOPS_SSH_HOST_IMAGE"]],
                       check=True, capture_output=True)
        wait_for(lambda: self.ssh("true").returncode == 0, timeout=60, interval=0.5)

    def ssh(self, command):
        return subprocess.run(["ssh", "-i", self.private_key, "-p", str(self.port), "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                               "root@127.0.0.1", command], capture_output=True, text=True, check=False)

    def inventory_vars(self):
        return dict(ansible_host="127.0.0.1", ansible_port=self.port, ansible_user="root",
                    ansible_ssh_private_key_file=self.private_key, ansible_python_interpreter="/usr/bin/python3",
                    ansible_ssh_common_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null")

    def remove(self):
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Two stacks (A on the db host and app1, B on app2), an S3 API, and the three servers."""
    keys = tmp_path_factory.mktemp("keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
    os.chmod(keys, 0o755)
    s3 = S3Server()
    hosts = []
    base_a, base_b = tmp_path_factory.mktemp("stack-a"), tmp_path_factory.mktemp("stack-b")
    try:
        with running_stack(base_a) as stack_a, running_stack(base_b) as stack_b:
            hosts = [SshHost("db", str(keys / "id.pub"), str(keys / "id"), [str(base_a)]),
                     SshHost("app1", str(keys / "id.pub"), str(keys / "id"), [str(base_a)]),
                     SshHost("app2", str(keys / "id.pub"), str(keys / "id"), [str(base_b)])]
            yield dict(db=hosts[0], app1=hosts[1], app2=hosts[2], stack_a=stack_a, stack_b=stack_b, s3=s3,
                       work=tmp_path_factory.mktemp("remote"), keys=keys)
    finally:
        for host in hosts:
            host.remove()
        s3.stop()


def inventory(fleet):
    """The production layout: a db host running the compose stack, two app hosts."""
    stack_a, stack_b, work = fleet["stack_a"], fleet["stack_b"], str(fleet["work"])
    s3 = fleet["s3"].options("remote")
    db = dict(
        fleet["db"].inventory_vars(),
        prerequisites_compose=True,
        backup_container=stack_a.postgres, backup_databases=["app"], backup_globals=True,
        backup_dest="/var/backups/stackops/postgres", backup_volume_dest="/var/backups/stackops/volumes",
        backup_volumes=[stack_a.name + "-uploads"], backup_s3=s3, backup_volume_s3=dict(s3, prefix="remote/volumes"),
        restore_drill_database="app", restore_drill_path="/var/backups/stackops/postgres",
        restore_drill_image=postgres_image(), restore_drill_log_dir="/var/log/stackops-runbook/drills",
        restore_drill_critical_tables={"public.users": 1000},
        restore_database="app", restore_path="/var/backups/stackops/postgres", restore_container=stack_a.postgres,
        restore_stop_services=["api"], restore_compose_project_dir=stack_a.dir, restore_compose_project=stack_a.name,
        restore_volumes=[stack_a.name + "-uploads"], restore_volume_path="/var/backups/stackops/volumes",
        restore_health_checks=[dict(name="ready", type="http", url=stack_a.url + "/health/ready")],
        health_checks=[dict(name="api", type="http", url=stack_a.url + "/health"),
                       dict(name="postgres container", type="container", container=stack_a.postgres),
                       dict(name="disk", type="disk", path="/", warning_percent=95, critical_percent=99)],
    )
    apps = {}
    for name, stack in (("app1", stack_a), ("app2", stack_b)):
        apps[name] = dict(
            fleet[name].inventory_vars(), prerequisites_compose=True,
            prerequisites_features=["docker", "health"],
            deploy_project_dir=stack.dir, deploy_project_name=stack.name, deploy_services=["api"],
            deploy_ledger_path=stack.ledger, deploy_health_interval=0.5, deploy_health_timeout=30, deploy_monitor=3,
            deploy_keep_releases=50, deploy_version_url=stack.url + "/api/version",
            deploy_health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")],
            rollback_project_dir=stack.dir, rollback_project_name=stack.name, rollback_ledger_path=stack.ledger,
            rollback_version_url=stack.url + "/api/version", rollback_monitor=2)
    path = os.path.join(work, "hosts.json")
    with open(path, "w") as fh:
        json.dump({"all": {"vars": dict(report_ledger_path="/var/log/stackops-runbook/ledger.jsonl",
                                        report_metrics_dir=""),
                           "children": {"db": {"hosts": {"db1": db}}, "app": {"hosts": apps}}}}, fh)
    return path


def play(collection, fleet, playbook, extra_vars=None, limit=None):
    """ansible-playbook stackops.runbook.PLAYBOOK over SSH, from the installed tarball; (rc, output, seconds)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection["path"], ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    argv = [os.path.join(BIN, "ansible-playbook"), "stackops.runbook." + playbook, "-i", inventory(fleet),
            "-e", json.dumps(extra_vars or {})]
    if limit:
        argv += ["--limit", limit]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(fleet["work"]), check=False)
    seconds = time.monotonic() - started
    TIMES.setdefault(playbook, []).append(round(seconds, 1))
    return proc.returncode, proc.stdout + proc.stderr, seconds


def why(out):
    """The lines of a play's output that say what failed."""
    return "\n".join(line for line in out.splitlines() if "fatal:" in line or "FAILED" in line or "ERROR" in line)


def test_the_tarball_ships_what_runs_and_nothing_of_development(collection):
    with tarfile.open(collection["tarball"]) as tar:
        names = tar.getnames()
    top = sorted({n.split("/", 1)[0] for n in names})
    assert not [n for n in names if n.startswith(("tests/", "molecule/", "inventories/sandbox", "tools/", ".ci"))]
    assert {"plugins", "roles", "playbooks", "meta", "README.md", "requirements.txt"} <= set(top)
    # the example inventory's playbooks parse from the installed collection
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection["path"])
    example = os.path.join(collection["path"], "ansible_collections", "stackops", "runbook", "inventories", "example")
    for playbook in ("backup", "restore_drill", "restore", "health", "deploy", "rollback", "prerequisites"):
        check = subprocess.run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i", example,
                                "stackops.runbook." + playbook], capture_output=True, text=True, env=env,
                               check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_a_bare_host_names_every_missing_library_and_the_fix(collection, fleet, capsys):
    rc, out, _seconds = play(collection, fleet, "backup", limit="db1")
    assert rc != 0
    message = re.search(r"missing Python libraries on [^\n]*", out).group(0)
    for library, package in (("zstandard", "python3-zstandard"),):
        assert library in message and package in message
    assert "stackops.runbook.prerequisites" in message
    report(capsys, "bare host: " + message[:400])
    # check mode says what it would install and installs nothing
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection["path"], ANSIBLE_HOST_KEY_CHECKING="False")
    check = subprocess.run([os.path.join(BIN, "ansible-playbook"), "stackops.runbook.prerequisites", "-i",
                            inventory(fleet), "--check", "--limit", "db1"], capture_output=True, text=True, env=env,
                           cwd=str(fleet["work"]), check=False)
    assert check.returncode == 0, why(check.stdout + check.stderr)
    assert "check mode: would install python3-zstandard" in check.stdout
    assert "no packages found" in fleet["db"].ssh("dpkg -l python3-zstandard").stderr


def test_the_prerequisites_role_makes_every_host_ready_and_is_idempotent(collection, fleet, capsys):
    rc, out, seconds = play(collection, fleet, "prerequisites")
    assert rc == 0, why(out)
    for host in ("db1", "app1", "app2"):
        assert re.search(r"%s is ready: " % host, out), out[-3000:]
    ready = re.search(r"db1 is ready: ([^\"]*)", out).group(1)
    report(capsys, "prerequisites %.0fs; db1: %s" % (seconds, ready[:300]))
    rc, out, _seconds = play(collection, fleet, "prerequisites")
    assert rc == 0 and re.search(r"db1\s*: ok=\d+\s+changed=0", out), out[-2000:]


def test_backup_drill_restore_and_health_run_over_ssh(collection, fleet, capsys):
    stack = fleet["stack_a"]
    rc, out, seconds = play(collection, fleet, "backup", limit="db1")
    assert rc == 0, why(out)
    keys = fleet["s3"].keys("remote")
    assert any(k.endswith(".manifest.json") and "/app_" in k for k in keys)
    assert any("/volumes/" in k for k in keys) and any("/globals_" in k for k in keys)
    listing = fleet["db"].ssh("ls /var/backups/stackops/postgres /var/backups/stackops/volumes").stdout
    assert re.search(r"app_\d{8}T\d{6}Z\.dump\.zst", listing) and "uploads" in listing
    timings = ["backup %.0fs" % seconds]

    rc, out, seconds = play(collection, fleet, "restore_drill", limit="db1")
    assert rc == 0, why(out)
    assert "Skipped" not in out  # the log directory is made before anything looks for it
    drill_log = fleet["db"].ssh("cat /var/log/stackops-runbook/drills/drill_app_*.md").stdout
    assert "| Result | **PASSED** |" in drill_log, drill_log
    timings.append("restore_drill %.0fs" % seconds)

    stack.psql("DELETE FROM audit_log WHERE id % 2 = 0")
    rc, out, seconds = play(collection, fleet, "restore", dict(restore_confirm="app"), limit="db1")
    assert rc == 0, why(out)
    assert stack.psql("SELECT count(*) FROM audit_log")[0][0] == "10000"
    timings.append("restore %.0fs" % seconds)

    rc, out, seconds = play(collection, fleet, "health", limit="db1")
    assert rc == 0, why(out)
    timings.append("health %.0fs" % seconds)
    report(capsys, "over SSH: " + ", ".join(timings))


def test_a_rolling_deploy_over_two_app_hosts_then_a_rollback(collection, fleet, capsys):
    first, second = fleet["stack_a"], fleet["stack_b"]
    untouched = second.api_containers()
    rc, out, broken = play(collection, fleet, "deploy", dict(deploy_version="1.2.0-never-healthy"))
    assert rc != 0
    assert first.version() == "1.0.0" and second.version() == "1.0.0"
    assert second.api_containers() == untouched and not os.path.exists(second.ledger)
    assert first.ledger_entries()[-1]["result"] == "rolled_back"

    rc, out, good = play(collection, fleet, "deploy", dict(deploy_version="1.5.0"))
    assert rc == 0, why(out)
    assert first.version() == "1.5.0" and second.version() == "1.5.0"

    rc, out, back = play(collection, fleet, "rollback")
    assert rc == 0, why(out)
    assert first.version() == "1.0.0" and second.version() == "1.0.0"
    report(capsys, "deploy over SSH: broken release rolled back on app1 in %.0fs (app2 untouched), good release on "
                   "both in %.0fs, rollback of both in %.0fs" % (broken, good, back))


def test_the_status_page_over_ssh_reads_each_host_and_fails_past_the_rpo(collection, fleet, capsys):
    # after the backup, drill, restore, health, deploys and rollback above: the db host's backups, drill and health,
    # each app host's release, read where the roles left them, the page written on each host
    rc, out, _seconds = play(collection, fleet, "status")
    assert rc == 0, why(out)
    page = fleet["db"].ssh("cat /var/log/stackops-runbook/status.md").stdout
    assert "**Everything is OK.**" in page and "| database app | app_" in page and "| yes | no | yes | no |" in page
    assert re.search(r"\| app \| \S+ \| [0-9.]+ (s|min) \| passed \|", page) and "## Health: healthy" in page
    for app in ("app1", "app2"):
        release = fleet[app].ssh("cat /var/log/stackops-runbook/status.md").stdout
        assert "Serving 1.0.0" in release and "last rollback 1.0.0" in release and ": succeeded." in release, release

    rc, out, _seconds = play(collection, fleet, "status", dict(report_status_rpo="1s"), limit="db1")
    assert rc != 0
    assert "need a person on db1: newest backup of database app is" in out and "older than the RPO (1 s)" in out
    report(capsys, "status over SSH: " + page.splitlines()[2])


def test_disaster_recovery_brings_a_stack_back_on_a_fresh_server_over_ssh(collection, fleet, tmp_path_factory, capsys):
    """The old server (this machine) backs its stack up, encrypted, to the S3 API and is wiped; a fresh server gets
    the prerequisites and the stack back from the offsite copy alone. No release ledger here (the stack was started
    with compose, never deployed by compose_release): the app starts at its env file's version."""
    base = tmp_path_factory.mktemp("stack-dr")
    key = Key(str(base), "dr")
    s3 = fleet["s3"].options("dr-remote")
    host = None
    with running_stack(base) as stack:
        try:
            uploads = stack.name + "-uploads"
            (api,) = stack.api_containers()
            subprocess.run(["docker", "exec", api, "sh", "-c", "head -c 200000 /dev/urandom > /srv/uploads/photo.jpg"],
                           check=True)
            image = images_env()["SANDBOX_API_IMAGE"] + ":1.0.0"
            files_before = uploads_listing(uploads, image)
            users = stack.psql("SELECT count(*) FROM users")
            rc, out, err = run_playbook(os.path.join(ROOT, "playbooks", "backup.yml"), local_inventory(base), dict(
                backup_databases=["app"], backup_container=stack.postgres, backup_dest=str(base / "old/postgres"),
                backup_s3=s3, backup_age_recipients=[key.recipient], backup_volumes=[uploads],
                backup_volume_dest=str(base / "old/volumes"), backup_config_paths=[stack.dir],
                backup_config_dest=str(base / "old/config"), report_ledger_path=str(base / "old/ledger.jsonl")))
            assert rc == 0, err[-2000:]
            assert stack.compose("down", "-v", "--remove-orphans").returncode == 0
            shutil.rmtree(stack.dir)
            shutil.rmtree(str(base / "old"))

            keys = fleet["keys"]
            host = SshHost("dr", str(keys / "id.pub"), str(keys / "id"), [str(base)])
            path = os.path.join(str(base), "hosts.json")
            with open(path, "w") as fh:
                json.dump({"all": {"children": {"db": {"hosts": {"new1": dict(
                    host.inventory_vars(), prerequisites_compose=True, prerequisites_age=True,
                    disaster_recovery_s3=s3, disaster_recovery_age_identity=key.secret,
                    disaster_recovery_project_dir=stack.dir, disaster_recovery_project_name=stack.name,
                    disaster_recovery_container=stack.postgres, disaster_recovery_other_services=["redis", "worker", "proxy"],
                    disaster_recovery_health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")],
                    report_metrics_dir="")}}}}}, fh)
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection["path"], ANSIBLE_NOCOLOR="1",
                       ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
            timings = []
            for playbook in ("prerequisites", "disaster_recovery"):
                started = time.monotonic()
                proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "stackops.runbook." + playbook, "-i", path],
                                      capture_output=True, text=True, env=env, cwd=str(base), check=False)
                timings.append("%s %.0fs" % (playbook, time.monotonic() - started))
                assert proc.returncode == 0, why(proc.stdout + proc.stderr) or proc.stdout[-3000:]
            assert key.secret not in proc.stdout
            assert stack.version() == "1.0.0"
            assert stack.psql("SELECT count(*) FROM users") == users
            assert uploads_listing(uploads, image) == files_before
            entry = json.loads(host.ssh("tail -n 1 /var/log/stackops-runbook/ledger.jsonl").stdout)
            assert entry["operation"] == "disaster_recovery" and entry["result"] == "succeeded", entry
            assert key.secret not in host.ssh("cat /var/log/stackops-runbook/ledger.jsonl").stdout
            report(capsys, "disaster recovery onto a fresh server over SSH: %s; RTO %ss, RPO %ss" % (
                ", ".join(timings), entry["details"]["rto_seconds"], entry["details"]["rpo_seconds"]))
        finally:
            if host:
                host.remove()
