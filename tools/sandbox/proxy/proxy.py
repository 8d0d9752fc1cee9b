"""The sandbox's reverse proxy (the role caddy plays in our users' stacks): forwards every request to the
containers of UPSTREAM (``api:8080``), found through docker's DNS on each request, so containers that
compose starts or stops are picked up at once. Like caddy's load balancer with retries, a request whose
connection is refused (a container that is stopping) is tried on the next container for up to
RETRY_SECONDS. Standard library only. ``/_proxy/live`` answers for the proxy itself.
Like caddy it writes an access log line per request (combined log format) naming the client: the peer, or the
last address of X-Forwarded-For that is not a private proxy (a load balancer in front, as caddy's
trusted_proxies), and passes X-Forwarded-For on. And like the maintenance recipe of caddy's users
(``@maintenance file /srv/maintenance/maintenance.html``), while MAINTENANCE_FILE exists every request is
answered 503 with that page and nothing reaches the api.
"""

import http.client
import ipaddress
import os
import random
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST, _sep, PORT = os.environ.get("UPSTREAM", "api:8080").partition(":")
PORT = int(PORT or 80)
RETRY_SECONDS = float(os.environ.get("RETRY_SECONDS", "5"))
CONNECT_TIMEOUT = float(os.environ.get("CONNECT_TIMEOUT", "0.5"))
READ_TIMEOUT = float(os.environ.get("READ_TIMEOUT", "30"))
MAINTENANCE_FILE = os.environ.get("MAINTENANCE_FILE", "/srv/maintenance/maintenance.html")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def upstreams():
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(HOST, PORT, type=socket.SOCK_STREAM)})
    except socket.gaierror:
        return []
    random.shuffle(addresses)
    return addresses


# the addresses of proxies in front of this one (a load balancer, docker's gateway), trusted to set X-Forwarded-For
TRUSTED = [ipaddress.ip_network(n)
           for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128", "fc00::/7")]


def trusted(address):
    try:
        return any(ipaddress.ip_address(address) in network for network in TRUSTED)
    except ValueError:
        return False


def client_address(peer, forwarded):
    hops = [a.strip() for a in forwarded.split(",") if a.strip()] + [peer]
    for address in reversed(hops):
        if not trusted(address):
            return address
    return hops[0]


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def client(self):
        """The client's address: the peer, or - when the peer is a proxy of ours - the last address of
        X-Forwarded-For that is not one."""
        return client_address(self.client_address[0], self.headers.get("X-Forwarded-For", ""))

    def _forward(self):
        if self.path == "/_proxy/live":
            return self._reply(200, b'{"status": "alive"}', [("Content-Type", "application/json")])
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            with open(MAINTENANCE_FILE, "rb") as fh:
                page = fh.read()
        except OSError:
            page = None
        if page is not None:
            return self._reply(503, page, [("Content-Type", "text/html; charset=utf-8"), ("Retry-After", "300"),
                                           ("Cache-Control", "no-store")])
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = ", ".join(
            [a for a in [self.headers.get("X-Forwarded-For", "").strip(), self.client_address[0]] if a])
        deadline = time.monotonic() + RETRY_SECONDS
        error = "no upstream"
        while time.monotonic() < deadline:
            for address in upstreams():
                # a short connect timeout: a container that just went away answers nothing at all
                conn = http.client.HTTPConnection(address, PORT, timeout=CONNECT_TIMEOUT)
                try:
                    conn.connect()
                    conn.sock.settimeout(READ_TIMEOUT)
                except OSError as exc:  # refused, unreachable: this container is going away, try the next
                    error = "%s: %s" % (address, exc)
                    conn.close()
                    continue
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    # the connection broke after it was accepted: retry only what is safe to repeat
                    error = "%s: %s" % (address, exc)
                    if self.command not in ("GET", "HEAD", "OPTIONS"):
                        return self._reply(502, b'{"error": "upstream connection lost"}', [])
                    continue
                finally:
                    conn.close()
                return self._reply(response.status, data, [(k, v) for k, v in response.getheaders()
                                                           if k.lower() not in HOP_BY_HOP | {"content-length"}])
            time.sleep(0.05)
        self._reply(502, ('{"error": "no upstream answered: %s"}' % error.replace('"', "'")).encode(), [])

    def _reply(self, status, data, headers):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.access_log(status, len(data))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    def access_log(self, code, size):
        # the access log, combined format, one line per request (the incident's evidence greps it by client)
        if self.path == "/_proxy/live":
            return
        sys.stdout.write('%s - - [%s] "%s" %s %s "%s" "%s"\n' % (
            self.client(), time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()), self.requestline, code, size,
            self.headers.get("Referer", "-"), self.headers.get("User-Agent", "-")))
        sys.stdout.flush()

    def log_request(self, code="-", size="-"):
        pass  # access_log writes the line, with the size

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Proxy).serve_forever()
