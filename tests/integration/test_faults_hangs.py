"""Faults that hang a scheduled job or mislead the person on call (the README's fault matrix, rows 6-8, 16, 17):
slow and silent servers on loopback, a locked table, bad check options, a report that cannot be written."""

import json
import os
import socket
import threading
import time

import pytest

from conftest import TableLock, fault, local_inventory, run_module, run_playbook

# how long a test waits for a module before calling it hung (not a timing assertion: the guard of a hang)
HANG = 90


class SilentServer:
    """Accepts TCP connections on loopback and then, per ``mode``, sends nothing ("silent") or one byte of an
    HTTP answer a second ("trickle"), forever: the servers that used to hang a check or an upload."""

    def __init__(self, mode="silent"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
        conn.settimeout(0.2)
        sent = 0
        while not self.stopped.is_set():
            try:
                conn.recv(65536)
            except socket.timeout:
                pass
            except OSError:
                return
            if self.mode == "trickle" and sent < len(answer):
                try:
                    conn.sendall(answer[sent:sent + 1])
                except OSError:
                    return
                sent += 1
                time.sleep(0.8)

    def stop(self):
        self.stopped.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent():
    servers = []

    def start(mode="silent"):
        servers.append(SilentServer(mode))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


@fault(6, "a server sends one byte a second (HTTP), or accepts and never answers (redis, TLS)",
       "the check's timeout bounds the whole check, connect to last byte; the check fails saying so",
       "nothing changed; the verdict says which check")
@pytest.mark.parametrize("kind", ["http", "redis", "tls"])
def test_a_slow_server_fails_the_check_at_its_timeout(silent, kind):
    server = silent("trickle" if kind == "http" else "silent")
    check = dict(name="slow", type=kind, timeout=2)
    if kind == "http":
        check["url"] = "http://127.0.0.1:%d/health" % server.port
    else:
        check.update(host="127.0.0.1", port=server.port)
    result = run_module("health_probe", dict(checks=[check]), timeout=HANG)
    assert result["status"] == "down"
    assert "no complete answer within the 2s timeout" in result["checks"][0]["message"]
    # and through wait_for: every round is bounded, so the wait ends at its own timeout
    result = run_module("health_probe", dict(checks=[check], wait_for="healthy", timeout=5, interval=1),
                        timeout=HANG)
    assert result["failed"] and "not healthy after 5s" in result["msg"]


@fault(7, "the postgres check's query hits a locked table, or the server accepts and never answers",
       "lock_timeout/statement_timeout and connect_timeout come from the check's timeout",
       "nothing changed; the lock holder untouched")
def test_a_postgres_check_on_a_locked_table_or_a_silent_server_ends_at_its_timeout(host_pg, silent):
    check = dict(name="db", type="postgres", timeout=2, database="app", query="SELECT count(*) FROM public.users",
                 **host_pg.connection())
    with TableLock(host_pg, "app", "public.users"):
        result = run_module("health_probe", dict(checks=[check]), timeout=HANG)
    assert result["status"] == "down"
    assert "timeout" in result["checks"][0]["message"]
    server = silent("silent")
    check.update(login_port=server.port)
    result = run_module("health_probe", dict(checks=[check]), timeout=HANG)
    assert result["status"] == "down" and "timeout" in result["checks"][0]["message"]


@fault(8, "the S3 endpoint accepts connections and never answers",
       "s3.connect_timeout, s3.read_timeout and s3.transfer_timeout bound the upload; the task fails naming the "
       "timeout", "the local backup, complete and verified")
def test_an_s3_endpoint_that_never_answers_fails_the_upload_within_its_timeouts(host_pg, tmp_path, silent):
    server = silent("silent")
    dest = str(tmp_path / "backups")
    s3 = dict(bucket="backups", prefix="x", endpoint_url="http://127.0.0.1:%d" % server.port, region="us-east-1",
              access_key="k", secret_key="s" * 16)
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest,
                                          s3=dict(s3, read_timeout=1, max_attempts=2)), timeout=HANG)
    assert result["failed"] and "offsite copy failed" in result["msg"] and "timeout" in result["msg"].lower()
    assert "The local backup is complete and verified" in result["msg"] and os.path.exists(result["path"])
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest,
                                          s3=dict(s3, read_timeout=1, max_attempts=50, transfer_timeout=3)),
                        timeout=HANG)
    assert result["failed"] and "s3.transfer_timeout (3s)" in result["msg"]


@fault(16, "a health check with a bad regular expression or timeout: abc",
       "the task fails as an input error naming the check and option, before any check runs",
       "no verdict: a configuration error is never reported as an outage")
@pytest.mark.parametrize("bad, said", [
    (dict(body_regex="(unclosed"), "body_regex '(unclosed' is not a valid regular expression"),
    (dict(json={"status": {"matches": "[z-a]"}}), "is not a valid regular expression"),
    (dict(timeout="abc"), "timeout='abc' must be a number of seconds above 0"),
])
def test_a_bad_check_option_is_an_input_error_not_an_outage(bad, said):
    check = dict(name="api", type="http", url="http://127.0.0.1:9/health", **bad)
    result = run_module("health_probe", dict(checks=[check]))
    assert result["failed"] and said in result["msg"] and "check 'api'" in result["msg"]
    assert "status" not in result


@fault(17, "the report cannot be written after a backup (a missing metrics directory, a webhook down)",
       "a warning about the report; the operation succeeded and the ledger has its one result",
       "the backup and its one ledger line")
def test_a_report_that_cannot_be_written_is_a_warning_and_the_ledger_has_one_result(host_pg, tmp_path, silent):
    ledger = tmp_path / "log" / "ledger.jsonl"
    variables = dict(backup_connection=dict(login_host="127.0.0.1", login_port=host_pg.port,
                                            login_password=host_pg.password), backup_dest=str(tmp_path / "backups"),
                     backup_databases=["app"], report_ledger_path=str(ledger),
                     report_metrics_dir=str(tmp_path / "no-such-directory"),
                     report_webhook_url="http://127.0.0.1:9/hook")
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path), variables,
                                      callback="ansible.builtin.default")
    assert rc == 0, output[-3000:] + stderr
    assert "WARNING: the backup succeeded, but its metrics were not published" in output
    assert "notification was not delivered" in output + stderr  # notify_webhook warns by itself
    assert "The backup failed" not in output
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [e["result"] for e in entries] == ["succeeded"]
