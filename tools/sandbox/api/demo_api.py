"""A small stand-in for the users' API container: health endpoints and a per-service status page.

Standard library only, so it runs on the official python image and on the locally built one.
DEMO_SERVICE_STATES ("cache=degraded,queue=down") overrides services' states for health drills.
"""

import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.time()
VERSION = os.environ.get("APP_VERSION", "0.0.0")
DB = (os.environ.get("DATABASE_HOST", "postgres"), int(os.environ.get("DATABASE_PORT", "5432")))


def overrides():
    states = {}
    for item in filter(None, os.environ.get("DEMO_SERVICE_STATES", "").split(",")):
        name, _sep, state = item.partition("=")
        states[name.strip()] = state.strip()
    return states


def database_state():
    try:
        with socket.create_connection(DB, timeout=1):
            return "up"
    except OSError:
        return "down"


def services():
    states = {"database": database_state(), "cache": "up", "queue": "up", "storage": "up"}
    states.update(overrides())
    return states


def overall(states):
    if states.get("database") == "down" or "down" in states.values():
        return "down"
    if "degraded" in states.values():
        return "degraded"
    return "ok"


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-api/" + VERSION

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/health/live":
            self._json(200, {"status": "alive", "uptime_seconds": round(time.time() - STARTED, 1)})
        elif path == "/health/ready":
            state = database_state()
            self._json(200 if state == "up" else 503, {"status": "ready" if state == "up" else "not_ready",
                                                       "database": state})
        elif path == "/health":
            states = services()
            verdict = overall(states)
            self._json(503 if verdict == "down" else 200, {"status": verdict, "version": VERSION})
        elif path == "/api/system/status":
            states = services()
            self._json(200, {"status": overall(states), "version": VERSION,
                             "services": {name: {"status": state} for name, state in states.items()}})
        elif path == "/api/version":
            self._json(200, {"version": VERSION, "started_at": STARTED})
        else:
            self._json(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
