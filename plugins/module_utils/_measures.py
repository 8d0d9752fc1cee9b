# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The runbooks' thresholds: checks that measure (latency percentiles, container CPU and memory, log lines matching
a pattern, docker's disk use) and one way to grade any measured value against a check's ``warning`` and
``critical`` limits (``{metric: limit}``; a value at or over a limit reaches it)."""

from __future__ import annotations

import datetime
import math
import re
import time

from ansible_collections.stackops.runbook.plugins.module_utils._docker import live_containers
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._units import size_text

# what each check type measures, so limits on anything else are refused before a check runs
METRICS = dict(
    latency=("p50_ms", "p95_ms", "max_ms", "error_percent"),
    container_stats=("cpu_percent", "memory_percent", "memory_bytes"),
    logs=("matches", "match_percent"),
    docker_disk=("images_bytes", "build_cache_bytes", "volumes_bytes", "containers_bytes", "total_bytes"),
    redis=("memory_percent", "used_memory_bytes", "connected_clients"),
    postgres=("connections_percent", "connections", "longest_query_seconds", "longest_transaction_seconds"),
)


class LimitError(RunbookError):
    """A check's limits name a metric its type does not measure, or are not numbers."""


def validate_limits(check):
    kind = check.get("type")
    for level in ("warning", "critical"):
        limits = check.get(level)
        if limits is None:
            continue
        if not isinstance(limits, dict):
            raise LimitError("check %r: %s must be a dict of limits such as {%s: 80}" % (
                check.get("name"), level, (METRICS.get(kind) or ("value",))[0]))
        for metric, limit in limits.items():
            if metric not in METRICS.get(kind, ()):
                raise LimitError("check %r (%s): %s limit on %r, which it does not measure; it measures %s" % (
                    check.get("name"), kind, level, metric, ", ".join(METRICS.get(kind, ())) or "nothing with limits"))
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
                raise LimitError("check %r: %s %s=%r must be a number of 0 or more" % (
                    check.get("name"), level, metric, limit))


def graded(check, status, message, details):
    """A passing check's result graded against its limits: fail at a critical limit, warn at a warning one; the
    message names the values and limits reached."""
    if status != "pass":
        return status, message, details
    for level, outcome in (("critical", "fail"), ("warning", "warn")):
        reached = ["%s %s (%s at %s)" % (metric, _number(details.get(metric)), level, _number(limit))
                   for metric, limit in sorted((check.get(level) or {}).items())
                   if details.get(metric) is not None and details[metric] >= limit]
        if reached:
            return outcome, "%s; %s" % (", ".join(reached), message), details
    return status, message, details


def _number(value):
    if isinstance(value, float):
        return "%.1f" % value
    return str(value)


def percentile(values, fraction):
    """The nearest-rank percentile of ``values`` (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, int(math.ceil(fraction * len(ordered))) - 1)]


def check_latency(check, one_request):
    """``requests`` requests (default 20) one after another; p50, p95 and max in ms, and the share that failed.
    ``one_request(check)`` returns (HTTP status, None) or (None, error text)."""
    count = int(check.get("requests", 20))
    accepted = check.get("status") or [200]
    times, errors = [], []
    for _request in range(count):
        started = time.monotonic()
        status, error = one_request(check)
        elapsed = (time.monotonic() - started) * 1000
        if error is not None or status not in accepted:
            errors.append(error or "HTTP %s" % status)
        else:
            times.append(elapsed)
    details = dict(requests=count, error_percent=round(100.0 * len(errors) / count, 1))
    if times:
        details.update(p50_ms=round(percentile(times, 0.5), 1), p95_ms=round(percentile(times, 0.95), 1),
                       max_ms=round(max(times), 1))
    if len(errors) == count:
        return "fail", "all %d requests failed (%s)" % (count, errors[0]), details
    message = "p50 %.0f ms, p95 %.0f ms, max %.0f ms over %d requests" % (
        details["p50_ms"], details["p95_ms"], details["max_ms"], count)
    if errors:
        message += ", %d failed (%s)" % (len(errors), errors[0])
    return "pass", message, details


def cpu_percent(stats):
    """docker stats' CPU %: the container's share of the host's CPU time between two samples, times the CPUs."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    return round(100.0 * used / system * cpus, 1) if used > 0 and system > 0 else 0.0


def memory_figures(stats):
    """(bytes used, % of the limit) as docker stats shows them: the page cache that can be dropped does not count."""
    memory = stats.get("memory_stats") or {}
    inner = memory.get("stats") or {}
    used = memory.get("usage", 0) - inner.get("inactive_file", inner.get("total_inactive_file", inner.get("cache", 0)))
    limit = memory.get("limit") or 0
    return max(0, used), (round(100.0 * used / limit, 1) if limit else 0.0)


def check_container_stats(check, client):
    """One docker stats sample of ``container`` (or of every running container of ``service`` in ``project``;
    the busiest is graded)."""
    containers = _containers(check, client)
    if not containers:
        return "fail", "no running container %s" % _what(check), {}
    samples = {}
    for container in containers:
        stats = container.stats(stream=False)
        if not stats.get("precpu_stats", {}).get("system_cpu_usage"):
            # the first sample of a container has no previous one to compare with: take a second
            time.sleep(1)
            stats = container.stats(stream=False)
        used, percent = memory_figures(stats)
        samples[container.name] = dict(cpu_percent=cpu_percent(stats), memory_percent=percent, memory_bytes=used)
    busiest = max(samples, key=lambda n: (samples[n]["cpu_percent"], samples[n]["memory_percent"]))
    details = dict(samples[busiest], container=busiest, containers=samples)
    return "pass", "%s: CPU %.1f%%, memory %.1f%% of its limit (%d MiB)" % (
        busiest, details["cpu_percent"], details["memory_percent"], details["memory_bytes"] // 1048576), details


def _containers(check, client):
    if check.get("container"):
        found = live_containers(client, {"name": "^/%s$" % re.escape(check["container"])})
        return found
    labels = ["com.docker.compose.service=%s" % check["service"]]
    if check.get("project"):
        labels.append("com.docker.compose.project=%s" % check["project"])
    return live_containers(client, {"label": labels})


def _what(check):
    if check.get("container"):
        return check["container"]
    return "of service %s%s" % (check["service"], " in project %s" % check["project"] if check.get("project") else "")


def check_logs(check, client, window_seconds):
    """Lines of the container's logs of the last ``window_seconds`` matching ``pattern``, as a count and - with
    ``per`` (the denominator's pattern, such as request lines) - as a percentage."""
    containers = _containers(check, client)
    if not containers:
        return "fail", "no running container %s" % _what(check), {}
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=window_seconds)
    pattern = re.compile(check["pattern"], 0 if check.get("case_sensitive") else re.IGNORECASE)
    per = re.compile(check["per"], 0 if check.get("case_sensitive") else re.IGNORECASE) if check.get("per") else None
    lines = matches = denominator = 0
    examples = []
    for container in containers:
        text = container.logs(stdout=True, stderr=True, since=int(since.timestamp()), timestamps=False)
        for line in text.decode("utf-8", "replace").splitlines():
            lines += 1
            if per is not None and per.search(line):
                denominator += 1
            if pattern.search(line):
                matches += 1
                if len(examples) < 3:
                    examples.append(line[:200])
    details = dict(lines=lines, matches=matches, examples=examples, window_seconds=window_seconds)
    message = "%d of %d lines in %ds match %s" % (matches, lines, window_seconds, check["pattern"])
    if per is not None:
        details["denominator"] = denominator
        details["match_percent"] = round(100.0 * matches / denominator, 2) if denominator else 0.0
        message = "%d matches per %d lines matching %s (%.2f%%) in %ds" % (
            matches, denominator, check["per"], details["match_percent"], window_seconds)
    return "pass", message, details


def check_docker_disk(check, client):
    """What docker keeps on disk (docker system df): images, build cache, volumes, containers' writable layers."""
    for attempt in range(10):
        try:
            df = client.df()
            break
        except Exception as exc:  # pylint: disable=broad-except
            # the engine runs one disk usage walk at a time: another client's (a second check) is in progress
            if "already running" not in str(exc) or attempt == 9:
                raise
            time.sleep(0.5)
    details = dict(
        # LayersSize counts the layers images share once, as docker system df does
        images_bytes=df.get("LayersSize") or sum(i.get("Size") or 0 for i in df.get("Images") or []),
        build_cache_bytes=sum(b.get("Size") or 0 for b in df.get("BuildCache") or []),
        volumes_bytes=sum(max(0, (v.get("UsageData") or {}).get("Size") or 0) for v in df.get("Volumes") or []),
        containers_bytes=sum(c.get("SizeRw") or 0 for c in df.get("Containers") or []))
    details["total_bytes"] = sum(details.values())
    parts = ("total_bytes", "images_bytes", "build_cache_bytes", "volumes_bytes", "containers_bytes")
    return "pass", "docker keeps %s: images %s, build cache %s, volumes %s, containers %s" % tuple(
        size_text(details[k]) for k in parts), details
