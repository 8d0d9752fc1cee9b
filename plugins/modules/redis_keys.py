#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_keys
short_description: Delete redis keys by pattern, such as every login session after a security incident
version_added: 0.2.0
description:
  - The security-incident runbooks' "clear sessions" - C(redis-cli --scan --pattern 'session:*' | xargs redis-cli del)
    - without a redis client on the host, and without blocking the server (C(SCAN), then C(UNLINK) in batches).
  - Keys that match none of O(patterns) stay. Emptying the whole database (C(FLUSHALL)) is done only when
    O(flush_all) asks for it by name; a pattern of C(*) is refused.
  - Check mode counts the keys that would go.
requirements:
  - nothing beyond Python (redis's protocol is spoken over a socket)
author:
  - stackops.runbook contributors (@stackops)
attributes:
  check_mode:
    support: full
    description: Counts the matching keys and deletes none.
  diff_mode:
    support: none
    description: Key names may be secrets (session ids); only counts are returned.
options:
  host:
    description: The redis server.
    type: str
    default: 127.0.0.1
  port:
    description: Its port.
    type: int
    default: 6379
  password:
    description: The password (C(requirepass)); keep it in a vault.
    type: str
  db:
    description: The database number.
    type: int
    default: 0
  patterns:
    description: Glob patterns of the keys to delete (redis's C(MATCH) syntax), such as C([session:*, "sess:*"]).
    type: list
    elements: str
    default: []
  flush_all:
    description: Delete every key of every database (C(FLUSHALL)) instead; O(patterns) must then be empty.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for redis to answer one command.
    type: int
    default: 10
seealso:
  - module: stackops.runbook.health_probe
"""

EXAMPLES = r"""
- name: Log every user out (their sessions are gone; caches and queues stay)
  stackops.runbook.redis_keys:
    port: 6379
    password: "{{ vault_redis_password }}"
    patterns: ["session:*"]
"""

RETURN = r"""
deleted:
  description: How many keys were deleted (would be, in check mode), per pattern.
  returned: success
  type: dict
  sample: {"session:*": 1342}
total:
  description: Keys deleted in all.
  returned: success
  type: int
  sample: 1342
flushed:
  description: Whether FLUSHALL emptied the server.
  returned: success
  type: bool
"""

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule
from ansible_collections.stackops.runbook.plugins.module_utils._redis import Redis

BATCH = 500


def delete_matching(redis, pattern, check_mode):
    count, batch = 0, []
    for key in redis.scan(pattern):
        count += 1
        batch.append(key)
        if len(batch) >= BATCH and not check_mode:
            redis.command("UNLINK", *batch)
            batch = []
    if batch and not check_mode:
        redis.command("UNLINK", *batch)
    return count


def main():
    module = RunbookModule(argument_spec=dict(
        host=dict(type="str", default="127.0.0.1"),
        port=dict(type="int", default=6379),
        password=dict(type="str", no_log=True),
        db=dict(type="int", default=0),
        patterns=dict(type="list", elements="str", default=[]),
        flush_all=dict(type="bool", default=False),
        timeout=dict(type="int", default=10),
    ), supports_check_mode=True)
    p = module.params
    if p["flush_all"] == bool(p["patterns"]):
        module.fail_json(msg="give patterns (the keys to delete, such as ['session:*']) or flush_all: true to empty "
                             "every database, not %s" % ("both" if p["flush_all"] else "neither"))
    if any(pattern.strip() in ("*", "") for pattern in p["patterns"]):
        module.fail_json(msg="patterns may not be '*' or empty: that is every key. Name the keys (session:*), or set "
                             "flush_all: true if the whole server is to be emptied")
    try:
        redis = Redis(p["host"], p["port"], p["password"], p["db"], p["timeout"])
        try:
            if p["flush_all"]:
                keyspace = redis.command("INFO", "keyspace").decode()
                total = sum(int(line.split("keys=", 1)[1].split(",", 1)[0])
                            for line in keyspace.splitlines() if line.startswith("db") and "keys=" in line)
                if not module.check_mode:
                    redis.command("FLUSHALL")
                result = dict(deleted={}, total=total, flushed=not module.check_mode, changed=True)
            else:
                deleted = {pattern: delete_matching(redis, pattern, module.check_mode) for pattern in p["patterns"]}
                total = sum(deleted.values())
                result = dict(deleted=deleted, total=total, flushed=False, changed=total > 0)
        finally:
            redis.close()
    except RunbookError as exc:
        module.fail_from(exc, "clearing redis keys", kept="Keys deleted before the error are gone, the others are as "
                                                          "they were; run it again to finish.")
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
