"""The security incident (playbooks/security_incident.yml) on a copy of the sandbox's stack under a credential
stuffing attack through its proxy: the evidence names the attacker from the proxy's access log and the app's
security_events, the maintenance page is served, the attacker's address is blocked by iptables inside a network
namespace this test makes (the firewall host's interpreter runs in it), the sessions end while the cache and the
queue stay, the summary and the ledger say what was done - and check mode does none of it."""

import glob
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import ROOT, failures, run_playbook, running_stack, task_results

PLAYBOOK = os.path.join(ROOT, "playbooks", "security_incident.yml")
ATTACKER, VISITOR, SERVER = "203.0.113.7", "203.0.113.9", "203.0.113.8"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("security")) as stack:
        yield stack


class Namespace:
    """A network namespace with addresses on its loopback and a TCP server: the firewall host."""

    def __init__(self, base):
        self.name = "so-fw-" + uuid.uuid4().hex[:8]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")
        for address in (ATTACKER, VISITOR, SERVER):
            self.run("ip", "addr", "add", address + "/32", "dev", "lo")
        self.server = subprocess.Popen(["ip", "netns", "exec", self.name, sys.executable, "-m", "http.server",
                                        "--bind", SERVER, "8080"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        # the firewall host's python: ansible runs every module of that host inside the namespace
        self.python = str(base / "python-in-namespace")
        with open(self.python, "w") as fh:
            fh.write('#!/bin/sh\nexec ip netns exec %s %s "$@"\n' % (self.name, sys.executable))
        os.chmod(self.python, 0o755)
        deadline = time.monotonic() + 10
        while not self.reaches(VISITOR) and time.monotonic() < deadline:
            time.sleep(0.1)

    def run(self, *argv):
        return subprocess.run(["ip", "netns", "exec", self.name] + list(argv), capture_output=True, text=True,
                              check=True).stdout

    def reaches(self, source):
        """Whether a TCP connection from ``source`` to the namespace's server is answered."""
        code = ("import socket; socket.create_connection((%r, 8080), timeout=1.5, source_address=(%r, 0)).close()"
                % (SERVER, source))
        return subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-c", code],
                              capture_output=True, check=False).returncode == 0

    def remove(self):
        self.server.kill()
        self.server.wait()
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@pytest.fixture
def namespace(tmp_path):
    ns = Namespace(tmp_path)
    try:
        yield ns
    finally:
        ns.remove()


def redis(stack, *words):
    container = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" + stack.name,
                                "--filter", "label=com.docker.compose.service=redis"],
                               capture_output=True, text=True, check=True).stdout.split()[0]
    return subprocess.run(["docker", "exec", container, "redis-cli", "--raw"] + list(words), capture_output=True,
                          text=True, check=True).stdout.split()


def request(url, body=None, client=None):
    headers = {"Content-Type": "application/json"}
    if client:
        headers["X-Forwarded-For"] = client
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def attack(stack):
    """30 failed logins from the attacker, a user's good one (a session), other visitors' pages."""
    for attempt in range(30):
        assert request(stack.url + "/api/login", dict(email="ops@example.com", password="guess%d" % attempt),
                       ATTACKER)[0] == 401
    status, body = request(stack.url + "/api/login", dict(email="user1@example.com", password="correct-horse-battery"),
                           "198.51.100.4")
    assert status == 200, body
    for visit in range(3):
        assert request(stack.url + "/health?visit=%d" % visit, client="198.51.100.20")[0] == 200
    redis(stack, "SET", "cache:home", "<html>")
    return json.loads(body)["session"]


def inventory(tmp_path, stack, namespace):
    db = dict(
        ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
        incident_compose_project=stack.name, incident_postgres=True, incident_container=stack.postgres,
        incident_dest=str(tmp_path / "incidents"), incident_project_dir=stack.dir,
        incident_health_checks=[dict(name="api", type="http", url=stack.url + "/health", timeout=2)],
        incident_scan_services=["proxy"],
        incident_investigation_queries=[dict(
            name="failed_logins_per_client", database="app",
            sql="SELECT host(ip) AS client, count(*) AS failed FROM security_events WHERE kind = 'login_failed' "
                "AND occurred_at > now() - interval '1 hour' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5;")],
        incident_maintenance_file=os.path.join(stack.dir, "maintenance", "maintenance.html"),
        incident_maintenance_check_url=stack.url + "/",
        incident_firewall_hosts=["edge"],
        incident_redis=dict(host="127.0.0.1", port=stack.redis_port),
        rotate_secrets_state_dir=str(tmp_path / "secrets"),
        report_ledger_path=str(tmp_path / "ledger.jsonl"), report_metrics_dir="")
    edge = dict(ansible_connection="local", ansible_python_interpreter=namespace.python)
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"children": {"db": {"hosts": {"db1": db}},
                                                     "firewalls": {"hosts": {"edge": edge}}}}}))
    return str(path)


CONTAIN = dict(incident_name="credential-stuffing", incident_maintenance=True, incident_block_top_offenders=1,
               incident_block_ips=["198.51.100.0/24"], incident_session_patterns=["session:*"])


def ledger(tmp_path):
    path = tmp_path / "ledger.jsonl"
    return [json.loads(line) for line in open(path)] if path.exists() else []


def test_check_mode_says_what_it_would_do_and_changes_nothing(stack, namespace, tmp_path):
    session = attack(stack)
    token_file = tmp_path / "webhook-token"
    token_file.write_text("old-webhook-token-0123456789")
    extra = dict(CONTAIN, incident_rotate_secrets=[dict(name="webhook_token", files=[str(token_file)],
                                                        current_value="old-webhook-token-0123456789")])
    rc, out, _err = run_playbook(PLAYBOOK, inventory(tmp_path, stack, namespace), extra, check=True)
    assert rc == 0, failures(out)
    shown = task_results(out, "Show the summary")["msg"][0]
    for step in ("put up the maintenance page", "block 198.51.100.0/24 and the top 1 offenders", "rotate webhook_token",
                 "delete the redis keys session:*"):
        assert step in shown, shown
    assert task_results(out, "End the sessions")["total"] >= 1  # counted, not deleted
    assert not glob.glob(str(tmp_path / "incidents" / "*"))
    assert not os.path.exists(os.path.join(stack.dir, "maintenance", "maintenance.html"))
    assert request(stack.url + "/health")[0] == 200
    assert "stackops incident" not in namespace.run("iptables", "-S")
    assert namespace.reaches(ATTACKER)
    assert redis(stack, "GET", "session:" + session) == ["user1@example.com"]
    assert token_file.read_text() == "old-webhook-token-0123456789"
    assert ledger(tmp_path) == []


def test_the_incident_preserves_evidence_then_contains_and_summarises(stack, namespace, tmp_path):
    session = attack(stack)
    assert redis(stack, "EXISTS", "jobs:processed") == ["1"]  # the worker's queue counter
    token_file = tmp_path / "webhook-token"
    token_file.write_text("old-webhook-token-0123456789")
    rotate = [dict(name="webhook_token", files=[str(token_file)], current_value="old-webhook-token-0123456789")]
    rc, out, _err = run_playbook(PLAYBOOK, inventory(tmp_path, stack, namespace),
                                 dict(CONTAIN, incident_rotate_secrets=rotate))
    assert rc == 0, failures(out)

    # evidence: the attacker first, by the proxy's access log and by the app's own table
    evidence = task_results(out, "Bundle the evidence")
    top = evidence["suspicious"]["clients"][0]
    assert top["client"] == ATTACKER and top["suspicious"] >= 30 and top["patterns"]["unauthorized"] >= 30, top
    assert evidence["suspicious"]["sources"] == {"proxy": evidence["suspicious"]["matched"]}
    first = evidence["queries"]["failed_logins_per_client"]["rows"][0]
    assert first["client"] == ATTACKER and first["failed"] >= 30, first
    assert "suspicious.json" in evidence["parts"] and "queries/failed_logins_per_client.json" in evidence["parts"]
    assert any(p.startswith("logs_since/") and "proxy" in p for p in evidence["parts"])
    assert evidence["errors"] == {}

    # maintenance page served by the proxy, nothing reaches the api
    status, body = request(stack.url + "/api/version")
    assert status == 503 and "Down for maintenance" in body

    # the attacker's address (top offender) and the given network are dropped inside the namespace only
    rules = namespace.run("iptables", "-S", "INPUT")
    assert "-A INPUT -s %s/32 -m comment --comment \"stackops incident credential-stuffing\" -j DROP" % ATTACKER in rules
    assert "198.51.100.0/24" in rules
    assert not namespace.reaches(ATTACKER) and namespace.reaches(VISITOR)
    host_rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=False).stdout
    assert "stackops incident credential-stuffing" not in host_rules

    # sessions gone (the worker makes new ones of its own every 2 s), the cache and the queue kept
    assert task_results(out, "End the sessions")["total"] >= 1
    assert redis(stack, "EXISTS", "session:" + session) == ["0"]
    assert redis(stack, "GET", "cache:home") == ["<html>"] and redis(stack, "EXISTS", "jobs:processed") == ["1"]

    # the exposed secret rotated now (it is not 80 days old), its value nowhere in the output
    new_token = token_file.read_text().strip()
    assert new_token != "old-webhook-token-0123456789" and len(new_token) >= 32
    assert new_token not in json.dumps(out)

    # the summary in the runbooks' template
    summary_path = task_results(out, "Write the security incident's summary")["dest"]
    assert os.stat(summary_path).st_mode & 0o777 == 0o600
    summary = open(summary_path).read()
    assert "**P2** (suggested" in summary and "**S2** (suggested" in summary  # sessions ended: compromise suspected
    assert "respond within 1 hour" in summary and "| P1 | Critical" in summary
    assert "| %s | " % ATTACKER in summary and evidence["sha256"] in summary
    assert "blocked 198.51.100.0/24, %s on edge (INPUT)" % ATTACKER in summary
    assert "Lift the maintenance page" in summary and "Unblock the addresses" in summary

    # the ledger: the evidence and each step as it was done, then the outcome
    lines = [entry for entry in ledger(tmp_path) if entry["operation"] == "security_incident"]
    steps = [entry["details"].get("step") for entry in lines]
    assert steps == ["evidence", "maintenance", "block", "rotate", "sessions", None], steps
    assert new_token not in open(tmp_path / "ledger.jsonl").read()
    assert lines[-1]["result"] == "succeeded" and lines[-1]["summary"].startswith("P2/S2 (suggested) credential-stuffing")

    # over: lift the page and unblock; both are idempotent steps of the same playbook (and the worker, which the
    # attacker's sessions could reach, is stopped: the other containment step)
    rc, out, _err = run_playbook(PLAYBOOK, inventory(tmp_path, stack, namespace),
                                 dict(incident_name="credential-stuffing", incident_maintenance_lift=True,
                                      incident_unblock_ips=[ATTACKER, "198.51.100.0/24"], incident_stop_services=["worker"]))
    assert rc == 0, failures(out)
    assert request(stack.url + "/api/version")[0] == 200
    assert "stackops incident" not in namespace.run("iptables", "-S") and namespace.reaches(ATTACKER)
    running = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" + stack.name,
                              "--filter", "label=com.docker.compose.service=worker"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert running == []
    assert [e["details"].get("step") for e in ledger(tmp_path)][-5:] == ["evidence", "maintenance", "stop", "block", None]


def test_bad_settings_fail_before_anything_is_done(stack, namespace, tmp_path):
    rc, out, _err = run_playbook(PLAYBOOK, inventory(tmp_path, stack, namespace),
                                 dict(incident_session_patterns=["session:*"], incident_sessions_flush_all=True,
                                      incident_maintenance=True, incident_maintenance_file=""))
    assert rc != 0
    message = failures(out)
    assert "incident_maintenance_file is needed" in message and "choose one (FLUSHALL" in message, message
    assert not glob.glob(str(tmp_path / "incidents" / "*")) and ledger(tmp_path) == []

    rc, out, _err = run_playbook(PLAYBOOK, inventory(tmp_path, stack, namespace),
                                 dict(incident_block_ips=["203.0.113.300"]))
    assert rc != 0 and "incident_block_ips: '203.0.113.300' is not an IP address" in failures(out), failures(out)
    assert "stackops incident" not in namespace.run("iptables", "-S")

    rc, out, _err = run_playbook(PLAYBOOK, inventory(tmp_path, stack, namespace),
                                 dict(incident_since="two hours", incident_maintenance=True))
    assert rc != 0 and "since: 'two hours' is not a duration" in failures(out), failures(out)
    assert not os.path.exists(os.path.join(stack.dir, "maintenance", "maintenance.html"))
    assert not glob.glob(str(tmp_path / "incidents" / "*"))
