"""health_probe against real servers started by the tests: HTTP (healthy, slow, 500, wrong JSON, a
flapping one, one that comes up late), TLS with a certificate that expires in 10 days, the sandbox API's
/api/system/status, PostgreSQL, Redis, containers in every state, and a disk threshold on a tmpfs."""

import datetime
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT, free_port, postgres_image, run_module, wait_for


class Handler(BaseHTTPRequestHandler):
    flaps = [0]
    born = time.monotonic()

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path == "/healthy":
            self._send(200, {"status": "ok", "checks": {"db": "up"}, "version": "1.4.2"})
        elif self.path == "/slow":
            time.sleep(0.3)
            self._send(200, {"status": "ok"})
        elif self.path == "/error":
            self._send(500, {"status": "error"})
        elif self.path == "/wrong-json":
            self._send(200, {"status": "degraded"})
        elif self.path == "/flapping":
            self.flaps[0] += 1
            self._send(200 if self.flaps[0] % 2 else 503, {})
        elif self.path.startswith("/later/"):
            ready_at = float(self.path.rsplit("/", 1)[1])
            self._send(200 if time.time() >= ready_at else 503, {})
        else:
            self._send(404, {})

    def log_message(self, fmt, *args):
        pass


@pytest.fixture(scope="module")
def http():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=10)).sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def redis():
    port = free_port()
    password = "redis-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", password],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "-a", password, "--no-auth-warning", "ping"],
                                    capture_output=True, text=True, check=False).stdout.strip() == "PONG")
    yield port, password
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def demo_api(host_pg):
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATABASE_HOST="127.0.0.1", DATABASE_PORT=str(host_pg.port),
               DEMO_SERVICE_STATES="cache=degraded")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "sandbox", "api", "demo_api.py")], env=env)
    url = "http://127.0.0.1:%d" % port
    wait_for(lambda: run_module("health_probe", dict(checks=[dict(name="up", type="tcp", host="127.0.0.1",
                                                                  port=port)]))["status"] == "healthy")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def probe(*checks, **options):
    return run_module("health_probe", dict(checks=list(checks), **options))


def by_name(result):
    return {c["name"]: c for c in result["checks"]}


def test_every_http_outcome_gets_its_status_and_message(http):
    result = probe(dict(name="ok", type="http", url=http + "/healthy", json={"status": "ok", "checks.db": "up"}),
                   dict(name="slow", type="http", url=http + "/slow", max_latency_ms=100, severity="warning"),
                   dict(name="error", type="http", url=http + "/error"),
                   dict(name="json", type="http", url=http + "/wrong-json", json={"status": "ok"}),
                   dict(name="regex", type="http", url=http + "/healthy", body_regex=r'"version": "1\.4'),
                   dict(name="compare", type="http", url=http + "/healthy", json={"length(checks)": {"ge": 1}}))
    checks = by_name(result)
    assert result["status"] == "down"
    assert checks["ok"]["status"] == "pass" and checks["regex"]["status"] == "pass"
    assert checks["compare"]["status"] == "pass"
    assert checks["slow"]["status"] == "fail" and "over the 100 ms budget" in checks["slow"]["message"]
    assert checks["slow"]["latency_ms"] >= 300
    assert checks["error"]["message"] == "HTTP 500, expected 200"
    assert checks["json"]["message"] == "status is 'degraded', expected 'ok'"
    assert result["summary"].startswith("down: 3/6 checks pass")


def test_a_warning_check_failing_makes_the_verdict_degraded(http):
    result = probe(dict(name="ok", type="http", url=http + "/healthy"),
                   dict(name="slow", type="http", url=http + "/slow", max_latency_ms=100, severity="warning"))
    assert result["status"] == "degraded" and not result.get("failed")


def test_a_certificate_expiring_in_ten_days_warns_and_fails_under_the_critical_threshold(tls_port):
    warn = probe(dict(name="cert", type="tls", host="127.0.0.1", port=tls_port))
    assert warn["status"] == "degraded"
    assert by_name(warn)["cert"]["status"] == "warn"
    assert 9 < by_name(warn)["cert"]["details"]["days_left"] < 10.1
    critical = probe(dict(name="cert", type="tls", host="127.0.0.1", port=tls_port, critical_days=14))
    assert critical["status"] == "down" and "critical under 14" in by_name(critical)["cert"]["message"]
    untrusted = probe(dict(name="https", type="http", url="https://127.0.0.1:%d/healthy" % tls_port))
    assert untrusted["status"] == "down" and "CERTIFICATE_VERIFY_FAILED" in by_name(untrusted)["https"]["message"]
    insecure = probe(dict(name="https", type="http", url="https://127.0.0.1:%d/healthy" % tls_port,
                          validate_certs=False))
    assert insecure["status"] == "healthy"


def test_the_sandbox_apis_per_service_statuses_become_the_verdict(demo_api):
    result = probe(dict(name="status", type="status_json", url=demo_api + "/api/system/status"),
                   dict(name="ready", type="http", url=demo_api + "/health/ready", json={"database": "up"}))
    assert result["status"] == "degraded"
    status = by_name(result)["status"]
    assert status["status"] == "warn" and status["message"] == "degraded: cache"
    assert status["details"]["services"]["database"] == "up"


def test_postgres_checks_connect_query_and_see_the_schema(host_pg):
    conn = host_pg.connection()
    result = probe(dict(conn, name="db", type="postgres", database="app", tables=["public.users", "orders"],
                        query="SELECT 1 FROM users LIMIT 1"),
                   dict(conn, name="schema", type="postgres", database="app", tables=["public.invoices"]),
                   dict(conn, name="down", type="postgres", login_port=free_port()))
    checks = by_name(result)
    assert checks["db"]["status"] == "pass" and checks["db"]["message"].startswith("PostgreSQL 15")
    assert checks["schema"]["message"] == "schema not ready: missing public.invoices"
    assert "Connection refused" in checks["down"]["message"]
    assert host_pg.password not in json.dumps(result)


def test_redis_ping_with_auth(redis):
    port, password = redis
    result = probe(dict(name="auth", type="redis", host="127.0.0.1", port=port, password=password),
                   dict(name="noauth", type="redis", host="127.0.0.1", port=port),
                   dict(name="wrong", type="redis", host="127.0.0.1", port=port, password="nope"),
                   dict(name="closed", type="redis", host="127.0.0.1", port=free_port()))
    checks = by_name(result)
    assert checks["auth"]["status"] == "pass" and checks["auth"]["message"].startswith("PONG; ")
    assert "NOAUTH" in checks["noauth"]["message"]
    assert "AUTH refused" in checks["wrong"]["message"]
    assert "Connection refused" in checks["closed"]["message"]


@pytest.fixture(scope="module")
def containers():
    image = postgres_image()
    tag = uuid.uuid4().hex[:6]
    names = dict(healthy="hp-healthy-" + tag, unhealthy="hp-unhealthy-" + tag, plain="hp-plain-" + tag,
                 exited="hp-exited-" + tag)
    runs = {"healthy": ["--health-cmd", "true", "--health-interval", "1s"],
            "unhealthy": ["--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1"],
            "plain": []}
    for kind, extra in runs.items():
        subprocess.run(["docker", "run", "-d", "--name", names[kind], "--label", "io.stackops.test=1"] + extra
                       + [image, "sleep", "600"], check=True, capture_output=True)
    subprocess.run(["docker", "run", "--name", names["exited"], "--label", "io.stackops.test=1", image, "sh", "-c",
                    "exit 3"], check=False, capture_output=True)

    def health(name):
        return subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", name], capture_output=True,
                              text=True, check=False).stdout.strip()
    wait_for(lambda: health(names["healthy"]) == "healthy" and health(names["unhealthy"]) == "unhealthy")
    yield names
    subprocess.run(["docker", "rm", "-f"] + list(names.values()), capture_output=True, check=False)


def test_container_states_are_reported_never_silently_healthy(containers):
    result = probe(*[dict(name=kind, type="container", container=name) for kind, name in containers.items()],
                   dict(name="missing", type="container", container="no-such-container-" + uuid.uuid4().hex[:6]))
    checks = by_name(result)
    assert checks["healthy"]["status"] == "pass"
    assert checks["unhealthy"]["message"].endswith("is unhealthy")
    assert "has no healthcheck, so its health is unknown" in checks["plain"]["message"]
    assert "is exited (exit code 3)" in checks["exited"]["message"]
    assert checks["missing"]["status"] == "fail"
    allowed = probe(dict(name="plain", type="container", container=containers["plain"], require_healthcheck=False))
    assert allowed["status"] == "healthy"


def test_waiting_fails_at_once_on_an_unhealthy_container(containers):
    started = time.monotonic()
    result = probe(dict(name="c", type="container", container=containers["unhealthy"]), wait_for="healthy",
                   timeout=60, interval=1)
    assert result["failed"] and "not waiting any longer" in result["msg"] and result["attempts"] == 1
    assert time.monotonic() - started < 20


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_thresholds_on_a_small_tmpfs(tmp_path):
    mount = str(tmp_path / "disk")
    os.makedirs(mount)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount], check=True)
    try:
        with open(os.path.join(mount, "fill"), "wb") as fh:
            fh.write(b"x" * 870 * 1024)
        warn = probe(dict(name="disk", type="disk", path=mount, severity="warning"))
        assert warn["status"] == "degraded" and by_name(warn)["disk"]["status"] == "warn"
        assert "% full (warning at 80%)" in by_name(warn)["disk"]["message"]
        critical = probe(dict(name="disk", type="disk", path=mount, critical_percent=85))
        assert critical["status"] == "down"
    finally:
        subprocess.run(["umount", mount], check=True)


def test_a_service_that_comes_up_late_passes_with_the_right_attempt_count(http):
    ready_at = time.time() + 2.5
    result = probe(dict(name="late", type="http", url="%s/later/%f" % (http, ready_at)), wait_for="healthy",
                   timeout=30, interval=1, success_threshold=2)
    assert not result.get("failed"), result.get("msg")
    # about 3 failing rounds (0, 1, 2 s), then 2 passing ones in a row
    assert 4 <= result["attempts"] <= 6


def test_a_flapping_service_never_satisfies_the_success_threshold(http):
    result = probe(dict(name="flap", type="http", url=http + "/flapping"), wait_for="healthy", timeout=4,
                   interval=0.5, success_threshold=2)
    assert result["failed"] and "not healthy after 4s" in result["msg"]


def test_a_service_that_never_comes_up_fails_at_the_timeout_with_the_last_results():
    port = free_port()
    started = time.monotonic()
    result = probe(dict(name="api", type="tcp", host="127.0.0.1", port=port), wait_for="healthy", timeout=3,
                   interval=0.5)
    assert result["failed"] and 2.5 < time.monotonic() - started < 15
    assert "not healthy after 3s" in result["msg"] and "api (127.0.0.1:%d: Connection refused)" % port in result["msg"]
    failure = probe(dict(name="api", type="tcp", host="127.0.0.1", port=port), wait_for="healthy", timeout=30,
                    interval=0.2, failure_threshold=3)
    assert failure["failed"] and "3 rounds in a row not healthy" in failure["msg"] and failure["attempts"] == 3


@pytest.mark.parametrize("check,message", [
    (dict(name="x", type="ftp"), "unknown type 'ftp'"),
    (dict(name="x", type="http", url="127.0.0.1:8080/health"), "needs a scheme and a host"),
    (dict(name="x", type="http", url="http://h/", json={"status[": "ok"}), "is not valid jmespath"),
    (dict(name="x", type="disk", path="/", warning_percent=150), "warning_percent=150 is out of range"),
    (dict(name="x", type="tcp", host="h"), "needs port"),
    (dict(type="tcp", host="h", port=1), "every check needs a name"),
])
def test_bad_input_is_refused_naming_the_check_and_option(check, message):
    result = probe(check)
    assert result["failed"] and message in result["msg"]


# ---------------------------------------------------------------- the task on the controller (action plugin)

def probe_task(tmp_path, args, verbosity=0, callback="ansible.builtin.json"):
    """health_probe as a task on localhost (connection local): the checks run in the controller's process."""
    from conftest import run_playbook
    play = tmp_path / "probe.json"
    play.write_text(json.dumps([{"name": "Probe", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Probe", "stackops.runbook.health_probe": args, "register": "probed", "ignore_errors": True},
        {"name": "Show", "ansible.builtin.debug": {"var": "probed"}}]}]))
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    return run_playbook(str(play), str(inventory), {}, verbosity=verbosity, callback=callback)


def task_result(output):
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_on_the_controller_the_task_gives_the_modules_results_and_masks_secrets(redis, http, tmp_path):
    port, password = redis
    checks = [dict(name="auth", type="redis", host="127.0.0.1", port=port, password=password),
              dict(name="api", type="http", url=http + "/healthy", json={"status": "ok"})]
    rc, output, stderr = probe_task(tmp_path, dict(checks=checks))
    assert rc == 0, stderr
    on_controller = task_result(output)
    as_module = probe(*checks)
    assert on_controller["status"] == as_module["status"] == "healthy"

    def comparable(result):
        return [(c["name"], c["status"], sorted(c["details"])) for c in result["checks"]]

    assert comparable(on_controller) == comparable(as_module)
    assert on_controller["checks"][0]["message"].startswith("PONG")
    assert password not in json.dumps(output) + stderr
    rc, verbose, stderr = probe_task(tmp_path, dict(checks=checks), verbosity=3, callback="ansible.builtin.default")
    assert rc == 0 and "healthy: 2/2 checks pass" in verbose
    assert password not in verbose + stderr


def test_on_the_controller_waiting_and_bad_input_fail_as_the_module_does(tmp_path):
    port = free_port()
    rc, output, stderr = probe_task(tmp_path, dict(checks=[dict(name="api", type="tcp", host="127.0.0.1", port=port)],
                                                   wait_for="healthy", timeout=30, interval=0.2, failure_threshold=3))
    failure = task_result(output)
    assert failure["failed"] and "3 rounds in a row not healthy" in failure["msg"] and failure["attempts"] == 3
    rc, output, stderr = probe_task(tmp_path, dict(checks=[dict(name="x", type="ftp")]))
    assert task_result(output)["failed"] and "unknown type 'ftp'" in task_result(output)["msg"]
    rc, output, stderr = probe_task(tmp_path, dict(checks=[dict(name="x", type="tcp", host="h", port=1)], timeout="soon"))
    assert task_result(output)["failed"] and "timeout" in task_result(output)["msg"]
