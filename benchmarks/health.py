"""Health check speed: one health_probe task against ansible.builtin.uri in a loop.

50 HTTP checks against a loopback server that answers each request in 200 ms:

  (a) ansible.builtin.uri in a loop over the 50 URLs (one task, 50 items)
  (b) one stackops.runbook.health_probe task with the 50 checks
  (c) the floor: one 200 ms request
  (d) for reference, one ansible.builtin.ping task: the fixed cost of running any module as a task

(a) and (b) are the task's own time inside a running ansible-playbook (the playbook's wall time minus
that of the same playbook with an empty task list, so Ansible's start-up is not counted for either).
Targets: (b) at least 10x faster than (a) and within 2x of (c). (b) minus (d) is what health_probe itself
costs beyond what every Ansible task pays.

Usage: python benchmarks/health.py
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = 50
DELAY = 0.2


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        time.sleep(DELAY)
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128


def playbook_seconds(tasks, workdir, repeat=3):
    path = os.path.join(workdir, "play.yml")
    with open(path, "w") as fh:
        json.dump([{"name": "Benchmark", "hosts": "localhost", "gather_facts": False, "tasks": tasks}], fh)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    best = None
    for _run in range(repeat):
        started = time.monotonic()
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), path,
                        "-e", "ansible_python_interpreter=%s" % sys.executable], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        best = elapsed if best is None else min(best, elapsed)
    return best


def main():
    server = Server(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    urls = ["http://127.0.0.1:%d/health/%d" % (server.server_address[1], i) for i in range(CHECKS)]
    workdir = tempfile.mkdtemp(prefix="stackops-bench-health-")
    try:
        started = time.monotonic()
        with urllib.request.urlopen(urls[0]) as response:
            response.read()
        floor = time.monotonic() - started
        empty = playbook_seconds([{"name": "Nothing", "ansible.builtin.meta": "noop"}], workdir)
        uri = playbook_seconds([{"name": "Check each URL", "ansible.builtin.uri": {"url": "{{ item }}"},
                                 "loop": urls}], workdir) - empty
        ping = playbook_seconds([{"name": "Ping", "ansible.builtin.ping": {}}], workdir) - empty
        probe = playbook_seconds([{"name": "Check them all", "stackops.runbook.health_probe": {
            "checks": [{"name": "c%d" % i, "type": "http", "url": url} for i, url in enumerate(urls)]}}],
            workdir) - empty
    finally:
        server.shutdown()
    print("| case | seconds | vs (c) |")
    print("|---|---:|---:|")
    for label, seconds in (("(a) ansible.builtin.uri in a loop, %d URLs" % CHECKS, uri),
                           ("(b) one health_probe task, %d checks" % CHECKS, probe),
                           ("(c) floor: one %d ms request" % (DELAY * 1000), floor),
                           ("(d) one ansible.builtin.ping task", ping),
                           ("(b) - (d): health_probe beyond any task's fixed cost", probe - ping)):
        print("| %s | %.2f | %.1fx |" % (label, seconds, seconds / floor))
    print()
    print("(b) is %.1fx faster than (a) (target >= 10) and %.1fx the floor (target <= 2); without the fixed cost "
          "of a task (d), %.1fx the floor. The empty playbook took %.2fs and is subtracted from (a), (b) and (d)"
          % (uri / probe, probe / floor, (probe - ping) / floor, empty))


if __name__ == "__main__":
    main()
