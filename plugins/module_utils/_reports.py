# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

What the roles report after each operation: the audit ledger's entries with secrets masked, the
Prometheus text exposition format for node_exporter's textfile collector, and Slack-compatible webhook
messages, and the writing of those files (atomic replace, one-write appends) with errors that say
where and what to do.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError

MASK = "********"
# Keys whose values are secrets whatever they hold (s3.secret_key, login_password, webhook_url's token...).
SECRET_KEY = re.compile(r"(password|passphrase|passwd|secret|token|credential|private_?key|api_?key|access_?key|webhook|dsn)",
                        re.IGNORECASE)
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
METRIC_TYPES = ("gauge", "counter", "untyped")
EVENTS = ("started", "succeeded", "warning", "failed", "skipped")


class ReportError(RunbookError):
    """A report (ledger line, metrics file, evidence) could not be written or its input is not usable."""


def file_mode(value, name="mode"):
    """The octal file mode ``value`` (such as '0644') of the parameter ``name``."""
    try:
        return int(str(value), 8)
    except ValueError:
        raise ReportError("%s=%r is not an octal file mode such as '0644'" % (name, value))


def read_text(path):
    """The file's text, or '' when it does not exist."""
    try:
        with open(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def write_report(path, text, mode=0o644):
    """``replace_file``, failing with a ReportError that names the file."""
    try:
        replace_file(path, text, mode)
    except OSError as exc:
        raise ReportError("cannot write %s: %s" % (path, exc))


def append_entry(path, entry, what="the ledger"):
    """Append one JSON line to ``path``, creating its directory (0750) when missing."""
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o750, exist_ok=True)
        append_line(path, entry)
    except OSError as exc:
        raise ReportError("cannot append to %s %s: %s; make its directory writable or set path" % (what, path, exc))


def mask(value, secrets=()):
    """A copy of ``value`` with the values of secret-named keys and every occurrence of ``secrets``
    replaced by a mask, through nested dicts and lists."""
    secrets = [s for s in (str(x) for x in secrets) if s]

    def scrub(item, key=None):
        if key is not None and SECRET_KEY.search(str(key)) and item not in (None, "", [], {}):
            return MASK
        if isinstance(item, dict):
            return {k: scrub(v, k) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [scrub(v) for v in item]
        if isinstance(item, str):
            for secret in secrets:
                item = item.replace(secret, MASK)
        return item

    return scrub(value)


def _label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(int(number)) if number.is_integer() and abs(number) < 2 ** 53 else repr(number)


def validate_metric(index, metric):
    """The problem with ``metrics[index]``, or None."""
    name = metric.get("name")
    if not name or not METRIC_NAME.match(str(name)):
        return "metrics[%d]: name %r is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)" % (index, name)
    if metric.get("type", "gauge") not in METRIC_TYPES:
        return "metrics[%d] (%s): type must be one of %s" % (index, name, ", ".join(METRIC_TYPES))
    for label in (metric.get("labels") or {}):
        if not LABEL_NAME.match(str(label)) or str(label).startswith("__"):
            return "metrics[%d] (%s): label %r is not a Prometheus label name" % (index, name, label)
    try:
        _sample_value(metric.get("value"))
    except (TypeError, ValueError):
        return "metrics[%d] (%s): value %r is not a number (use 0/1 for booleans)" % (index, name, metric.get("value"))
    return None


def exposition(metrics):
    """The text exposition format for ``metrics`` (dicts with name, value, help, type, labels): one HELP
    and TYPE line per metric name, samples of the same name together, stable order."""
    by_name = {}
    for metric in metrics:
        by_name.setdefault(metric["name"], []).append(metric)
    lines = []
    for name in sorted(by_name):
        group = by_name[name]
        help_text = next((m["help"] for m in group if m.get("help")), name).replace("\\", "\\\\").replace("\n", "\\n")
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s %s" % (name, next((m["type"] for m in group if m.get("type")), "gauge")))
        for metric in sorted(group, key=lambda m: sorted((m.get("labels") or {}).items())):
            labels = metric.get("labels") or {}
            rendered = ",".join('%s="%s"' % (k, _label_value(labels[k])) for k in sorted(labels))
            lines.append("%s%s %s" % (name, "{%s}" % rendered if rendered else "", _sample_value(metric["value"])))
    return "\n".join(lines) + "\n"


def replace_file(path, text, mode=0o644):
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename, so a
    reader (node_exporter) never sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def append_line(path, entry, mode=0o640):
    """Append one JSON line to ``path`` in a single write under O_APPEND, so concurrent runs never
    interleave their lines."""
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path):
    """The entries of a file of JSON lines that append_line writes (a ledger, the drill history), oldest first; []
    when there is none. A line cut by a crash is skipped: the ones before and after it still count."""
    entries = []
    if path and os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                try:
                    entries.append(json.loads(line))
                except ValueError:  # a line cut by a crash, or an empty one
                    continue
    return entries


EVENT_STYLE = {"started": (":arrow_forward:", "#439FE0"), "succeeded": (":white_check_mark:", "good"),
               "warning": (":warning:", "warning"),
               "failed": (":rotating_light:", "danger"), "skipped": (":fast_forward:", "#AAAAAA")}


def webhook_payload(operation, event, host, summary, details=None, channel=None, username=None):
    """A Slack incoming-webhook message (also understood by Mattermost, Rocket.Chat and Discord's /slack
    endpoint): a one-line ``text`` for notifications and an attachment with the details as fields."""
    icon, color = EVENT_STYLE[event]
    text = "%s stackops.runbook %s %s on %s: %s" % (icon, operation, event, host, summary)
    fields = [dict(title=str(k), value=str(v), short=len(str(v)) < 40) for k, v in sorted((details or {}).items())]
    payload = dict(text=text, attachments=[dict(color=color, fallback=text, fields=fields)])
    if channel:
        payload["channel"] = channel
    if username:
        payload["username"] = username
    return payload
