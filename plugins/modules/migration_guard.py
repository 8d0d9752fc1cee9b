#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: migration_guard
short_description: Lint pending PostgreSQL migrations for operations that lock or break a live application
version_added: 0.1.0
description:
  - Reads migration SQL (files, directories such as Prisma's C(migrations/*/migration.sql), or statements) and
    reports the operations squawk and strong_migrations flag - DROP TABLE and DROP COLUMN, ADD COLUMN NOT NULL
    without a default, SET NOT NULL, column type changes, renames, CREATE or DROP INDEX without CONCURRENTLY,
    CONCURRENTLY inside a transaction, foreign key and check constraints without NOT VALID, UNIQUE or PRIMARY KEY
    added without an existing index, and DDL without a C(lock_timeout).
  - Each finding names its rule, file, line, severity and the safe way to do it. Changes to a table created in
    the same migration are not flagged.
  - Fails when there are errors that are not acknowledged. Acknowledge a finding in the SQL with a comment in or
    just above the statement (C(-- migration_guard) then C(ignore drop-column) and the reason), or with
    O(acknowledge).
author:
  - stackops.runbook contributors (@stackops)
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
options:
  paths:
    description:
      - Migration files, or directories searched for C(*.sql) files (recursively), linted in name order.
    type: list
    elements: path
    default: []
  statements:
    description: SQL statements to lint, such as a migration tool's generated SQL.
    type: list
    elements: str
    default: []
  acknowledge:
    description: Findings accepted on purpose, each with the rule and optionally the file (its name or a path suffix).
    type: list
    elements: dict
    default: []
    suboptions:
      rule:
        description: The rule, such as C(drop-column).
        type: str
        required: true
      file:
        description: Only in this migration file (a suffix of its path); default every file.
        type: str
      reason:
        description: Why it is safe; recorded in the result.
        type: str
  fail_on:
    description: Fail on unacknowledged C(error) findings, on C(warning) and errors, or C(never).
    type: str
    choices: [error, warning, never]
    default: error
notes:
  - Rules - drop-table, drop-column, not-null-without-default, set-not-null, column-type-change, rename,
    create-index-without-concurrently, drop-index-without-concurrently, concurrently-in-transaction,
    constraint-without-not-valid, unique-constraint-without-index, missing-lock-timeout.
seealso:
  - module: stackops.runbook.pg_backup
"""

EXAMPLES = r"""
- name: Check the pending Prisma migrations before running them
  stackops.runbook.migration_guard:
    paths:
      - /srv/myapp/prisma/migrations
    acknowledge:
      - rule: drop-column
        file: 20261120_drop_legacy_flag/migration.sql
        reason: the column is unused since release 1.4
"""

RETURN = r"""
findings:
  description: Every finding, acknowledged or not.
  returned: always
  type: list
  elements: dict
  sample: [{"rule": "create-index-without-concurrently", "severity": "error", "file": "/srv/app/m/001.sql", "line": 3,
            "statement": "CREATE INDEX users_email_idx ON users (email)", "acknowledged": false,
            "message": "CREATE INDEX without CONCURRENTLY blocks writes to the table for the whole build",
            "fix": "CREATE INDEX CONCURRENTLY, outside a transaction"}]
errors:
  description: Unacknowledged findings of severity error.
  returned: always
  type: int
  sample: 1
warnings_count:
  description: Unacknowledged findings of severity warning.
  returned: always
  type: int
  sample: 0
files:
  description: The migration files linted, in order.
  returned: always
  type: list
  elements: str
  sample: ["/srv/app/prisma/migrations/20261120_add_plan/migration.sql"]
"""

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule
from ansible_collections.stackops.runbook.plugins.module_utils._migration_rules import (
    RULES,
    lint,
    lint_files,
    migration_files,
)


def main():
    module = RunbookModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", default=[]),
            statements=dict(type="list", elements="str", default=[]),
            acknowledge=dict(type="list", elements="dict", default=[], options=dict(
                rule=dict(type="str", required=True),
                file=dict(type="str"),
                reason=dict(type="str"),
            )),
            fail_on=dict(type="str", default="error", choices=["error", "warning", "never"]),
        ),
        required_one_of=[("paths", "statements")],
        supports_check_mode=True,
    )
    p = module.params
    for ack in p["acknowledge"]:
        if ack["rule"] not in RULES:
            module.fail_json(msg="acknowledge: unknown rule %r; the rules are %s" % (ack["rule"], ", ".join(sorted(RULES))))
    try:
        files = migration_files(p["paths"])
        findings = lint_files(files)
    except RunbookError as exc:
        module.fail_from(exc)
    if p["statements"]:
        findings += lint(";\n".join(p["statements"]), "<statements>")
    for finding in findings:
        for ack in p["acknowledge"]:
            if ack["rule"] == finding["rule"] and (not ack["file"] or finding["file"].endswith(ack["file"])):
                finding["acknowledged"] = True
                finding["reason"] = ack.get("reason")
    open_findings = [f for f in findings if not f["acknowledged"]]
    errors = sum(1 for f in open_findings if f["severity"] == "error")
    warnings = sum(1 for f in open_findings if f["severity"] == "warning")
    result = dict(changed=False, findings=findings, errors=errors, warnings_count=warnings, files=files)
    failing = errors + (warnings if p["fail_on"] == "warning" else 0) if p["fail_on"] != "never" else 0
    if failing:
        module.fail_json(msg="%d migration finding(s) to resolve or acknowledge: %s" % (failing, "; ".join(
            "%s:%s %s (%s; instead: %s)" % (f["file"], f["line"], f["rule"], f["message"], f["fix"])
            for f in open_findings if f["severity"] == "error" or p["fail_on"] == "warning")), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
