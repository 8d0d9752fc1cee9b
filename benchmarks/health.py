"""Health check speed: one health_probe task against ansible.builtin.uri in a loop.

50 HTTP checks against a loopback server that answers each request in 200 ms:

  (a) ansible.builtin.uri in a loop over the 50 URLs (one task, 50 items)
  (b) one stackops.runbook.health_probe task with the 50 checks
  (c) the floor: one 200 ms request
  (d) for reference, one ansible.builtin.ping task: the fixed cost of running any module as a task

Each case is timed two ways, best of five runs: the task's own duration as Ansible records it (the json
callback's task start and end, what profile_tasks shows), and the playbook's wall time minus that of the same
playbook with only a no-op (which also counts the worker process Ansible forks for the task).
Targets: (b) at least 10x faster than (a) and within 2x of (c).

On localhost (connection local, the usual way to run URL checks: delegate_to localhost) health_probe's action
plugin runs the checks in the controller's process instead of starting a module.

Usage: python benchmarks/health.py
"""

import datetime
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


def playbook_seconds(tasks, workdir, repeat=5):
    """(best task duration, best wall time) of a one-task playbook on localhost."""
    path = os.path.join(workdir, "play.yml")
    with open(path, "w") as fh:
        json.dump([{"name": "Benchmark", "hosts": "localhost", "gather_facts": False, "tasks": tasks}], fh)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    best_task = best_wall = None
    for _run in range(repeat):
        started = time.monotonic()
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), path,
                               "-e", "ansible_python_interpreter=%s" % sys.executable], check=True, env=env,
                              capture_output=True, text=True)
        wall = time.monotonic() - started
        duration = json.loads(proc.stdout)["plays"][0]["tasks"][-1]["task"]["duration"]
        # a meta task has no end
        task = (parse_time(duration.get("end", duration["start"])) - parse_time(duration["start"])).total_seconds()
        best_task = task if best_task is None else min(best_task, task)
        best_wall = wall if best_wall is None else min(best_wall, wall)
    return best_task, best_wall


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


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
        _noop, empty = playbook_seconds([{"name": "Nothing", "ansible.builtin.meta": "noop"}], workdir)
        cases = [
            ("(a) ansible.builtin.uri in a loop, %d URLs" % CHECKS,
             [{"name": "Check each URL", "ansible.builtin.uri": {"url": "{{ item }}"}, "loop": urls}]),
            ("(b) one health_probe task, %d checks" % CHECKS,
             [{"name": "Check them all", "stackops.runbook.health_probe": {
                 "checks": [{"name": "c%d" % i, "type": "http", "url": url} for i, url in enumerate(urls)]}}]),
            ("(d) one ansible.builtin.ping task", [{"name": "Ping", "ansible.builtin.ping": {}}]),
        ]
        timings = {label: playbook_seconds(tasks, workdir) for label, tasks in cases}
    finally:
        server.shutdown()
    print("| case | task duration (s) | vs (c) | playbook wall time minus no-op playbook (s) | vs (c) |")
    print("|---|---:|---:|---:|---:|")
    for label, (task, wall) in timings.items():
        print("| %s | %.2f | %.1fx | %.2f | %.1fx |" % (label, task, task / floor, wall - empty, (wall - empty) / floor))
    print("| (c) floor: one %d ms request | %.2f | 1.0x | | |" % (DELAY * 1000, floor))
    (uri_task, uri_wall), (probe_task, probe_wall) = timings[cases[0][0]], timings[cases[1][0]]
    print()
    print("(b) is %.1fx faster than (a) (target >= 10) and %.1fx the floor (target <= 2), by task duration; by "
          "wall time %.1fx faster and %.1fx the floor (the no-op playbook took %.2fs)"
          % (uri_task / probe_task, probe_task / floor, (uri_wall - empty) / (probe_wall - empty),
             (probe_wall - empty) / floor, empty))


if __name__ == "__main__":
    main()
