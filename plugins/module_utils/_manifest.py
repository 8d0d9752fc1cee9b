# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Backup names and manifests.

Every backup is ``LABEL_YYYYMMDDTHHMMSSZ`` plus a suffix that says its format and compression, with a
manifest ``LABEL_YYYYMMDDTHHMMSSZ.manifest.json`` beside it. Retention and restores only ever touch
files that carry this naming *and* a manifest written by this collection.
"""

from __future__ import annotations

import datetime
import json
import re

TOOL = "stackops.runbook.pg_backup"
VOLUME_TOOL = "stackops.runbook.volume_backup"
CONFIG_TOOL = "stackops.runbook.config_backup"
IMAGES_TOOL = "stackops.runbook.image_backup"
MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".partial"
ENCRYPTED_SUFFIX = ".age"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# database names become file names: keep them to characters that are safe in paths and shells
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}$")
NAME_RE = re.compile(r"^(?P<label>[A-Za-z0-9_][A-Za-z0-9_.\-]*)_(?P<ts>\d{8}T\d{6}Z)$")
DATA_SUFFIXES = {
    ("plain", "zstd"): ".sql.zst", ("plain", "gzip"): ".sql.gz", ("plain", "none"): ".sql",
    ("custom", "zstd"): ".dump.zst", ("custom", "gzip"): ".dump.gz", ("custom", "none"): ".dump",
    ("directory", "zstd"): ".dir", ("directory", "gzip"): ".dir", ("directory", "none"): ".dir",
    ("tar", "zstd"): ".tar.zst", ("tar", "gzip"): ".tar.gz", ("tar", "none"): ".tar",
}


def is_safe_name(name):
    return bool(SAFE_NAME.match(name or "")) and ".." not in name


def backup_name(label, when):
    return "%s_%s" % (label, when.strftime(TIMESTAMP_FORMAT))


def data_file_name(name, fmt, compression, encrypted=False):
    """``name`` + the suffix of its format and compression (+ ``.age`` when encrypted: ``age -d`` first)."""
    return name + DATA_SUFFIXES[(fmt, compression)] + (ENCRYPTED_SUFFIX if encrypted else "")


def manifest_file_name(name):
    return name + MANIFEST_SUFFIX


def parse_name(name):
    """(label, UTC datetime) of a backup name, or None when it is not one of ours."""
    m = NAME_RE.match(name)
    if not m:
        return None
    when = datetime.datetime.strptime(m.group("ts"), TIMESTAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)
    return m.group("label"), when


def name_of_manifest_file(file_name):
    """The backup name of ``LABEL_TS.manifest.json``, or None."""
    if not file_name.endswith(MANIFEST_SUFFIX):
        return None
    name = file_name[:-len(MANIFEST_SUFFIX)]
    return name if parse_name(name) else None


def isoformat(when):
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(manifest):
    return json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"


def loads(data, name=None):
    """Parse a manifest; None when it is not one written by this collection for ``name``."""
    try:
        manifest = json.loads(data)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("tool") not in (TOOL, VOLUME_TOOL, CONFIG_TOOL, IMAGES_TOOL):
        return None
    if name is not None and manifest.get("name") != name:
        return None
    key = (manifest.get("format"), manifest.get("compression"))
    if key not in DATA_SUFFIXES or manifest.get("file") != data_file_name(
            manifest.get("name", ""), *key, encrypted=bool(manifest.get("encryption"))):
        return None
    return manifest
