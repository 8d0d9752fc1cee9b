# -*- coding: utf-8 -*-
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The security incident's log reading: the runbooks' ``docker compose logs | grep -iE
"unauthorized|forbidden|failed|attack"``, counted by pattern and by client address, so the evidence says who
is attacking and how, and the containment can block the top offenders. Pure logic: lines in, a summary out."""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError

# The runbooks' grep, one pattern per word, each also matching the HTTP status an access log line carries
# (combined log format: `"GET /path HTTP/1.1" 401 31`; caddy's JSON: `"status":401`).
SUSPICIOUS_PATTERNS = {
    "unauthorized": r"\bunauthori[sz]ed\b|\"\s401\s|\"status\":\s*401\b",
    "forbidden": r"\bforbidden\b|\"\s403\s|\"status\":\s*403\b",
    "failed": r"\bfail(ed|ure)\b",
    "attack": r"\battack|union\s+(all\s+)?select|\.\./\.\./|<script|/etc/passwd|/\.env\b|/\.git/|wp-login",
}
# Where a log line names its client, each with one group: caddy's JSON access log (client_ip is the client
# behind trusted proxies, remote_ip the peer), the common and combined log formats (nginx, apache, the sandbox's
# proxy), and an application's "... from ADDRESS".
CLIENT_PATTERNS = [
    r"\"client_ip\"\s*:\s*\"([^\"]+)\"",
    r"\"(?:remote_ip|remote_addr)\"\s*:\s*\"([^\"]+)\"",
    r"^([0-9A-Fa-f:.]+) \S+ \S+ \[",
    r"\bfrom ([0-9A-Fa-f:.]*[.:][0-9A-Fa-f:.]+)\b",
]
EXAMPLES_PER_PATTERN = 3


class PatternError(RunbookError):
    """The log reading's settings are wrong: a pattern that does not compile, a client pattern without a group,
    a window that is no duration."""


def compile_patterns(patterns, client_patterns):
    """({name: regex}, [regex]) compiled (case-insensitive, as grep -i); PatternError naming the bad one."""
    compiled = {}
    for name, text in patterns.items():
        try:
            compiled[name] = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise PatternError("suspicious_patterns.%s=%r is not a regular expression: %s" % (name, text, exc))
    clients = []
    for text in client_patterns:
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise PatternError("client_patterns: %r is not a regular expression: %s" % (text, exc))
        if pattern.groups < 1:
            raise PatternError("client_patterns: %r needs one group around the address, such as "
                               "^([0-9a-f:.]+) " % text)
        clients.append(pattern)
    return compiled, clients


class SuspiciousLines:
    """Counts the lines matching each pattern, and by the client address the line names."""

    def __init__(self, patterns, client_patterns):
        self.patterns, self.client_patterns = compile_patterns(patterns, client_patterns)
        self.lines = self.matched = 0
        self.by_pattern = {name: 0 for name in self.patterns}
        self.by_source = {}
        self.clients = {}
        self.examples = {name: [] for name in self.patterns}

    def client(self, line):
        for pattern in self.client_patterns:
            found = pattern.search(line)
            if found:
                try:
                    return str(ipaddress.ip_address(found.group(1)))
                except ValueError:
                    continue
        return None

    def feed(self, line, source):
        """Count one log line of ``source`` (a container or service name)."""
        self.lines += 1
        hits = [name for name, pattern in self.patterns.items() if pattern.search(line)]
        client = self.client(line)
        if client is not None:
            entry = self.clients.setdefault(client, dict(lines=0, suspicious=0, patterns={}))
            entry["lines"] += 1
        if not hits:
            return
        self.matched += 1
        self.by_source[source] = self.by_source.get(source, 0) + 1
        for name in hits:
            self.by_pattern[name] += 1
            if len(self.examples[name]) < EXAMPLES_PER_PATTERN:
                self.examples[name].append(line[:300])
        if client is not None:
            entry["suspicious"] += 1
            for name in hits:
                entry["patterns"][name] = entry["patterns"].get(name, 0) + 1

    def summary(self, top):
        """The counts, and the ``top`` clients with the most suspicious lines (ties by address)."""
        offenders = sorted(((c, e) for c, e in self.clients.items() if e["suspicious"]),
                           key=lambda item: (-item[1]["suspicious"], item[0]))[:top]
        return dict(lines=self.lines, matched=self.matched, patterns=dict(self.by_pattern),
                    sources=dict(self.by_source),
                    clients=[dict(client=c, suspicious=e["suspicious"], lines=e["lines"], patterns=e["patterns"])
                             for c, e in offenders])


def lines_of(chunks):
    """Complete lines (str) from a stream of byte chunks that may split lines anywhere."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *complete, rest = rest.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if rest:
        yield rest.decode("utf-8", "replace").rstrip("\r")
