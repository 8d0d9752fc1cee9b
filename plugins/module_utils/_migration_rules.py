# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Lint PostgreSQL migration SQL for the operations that lock or break a live application, after the
rules of squawk and strong_migrations. Pure functions: split SQL into statements (quotes, dollar quotes
and comments respected, line numbers kept), then check each statement.

A finding is acknowledged by a comment in the statement or just above it:
``-- migration_guard: ignore drop-column (the column is unused since v1.4)``.
"""

from __future__ import annotations

import os
import re

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError

ERROR, WARNING = "error", "warning"

RULES = {
    "drop-table": (ERROR, "DROP TABLE loses the table and breaks the running release that still reads it",
                   "stop using the table in one release, drop it in a later one (and back it up)"),
    "drop-column": (ERROR, "DROP COLUMN breaks the running release that still selects the column",
                    "stop using the column (ignore it in the ORM) in one release, drop it in a later one"),
    "not-null-without-default": (ERROR, "ADD COLUMN ... NOT NULL without a DEFAULT fails on a table with rows "
                                        "and breaks inserts of the running release",
                                 "add the column nullable or with a DEFAULT, backfill, then add the constraint"),
    "set-not-null": (WARNING, "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
                     "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL (PostgreSQL 12+ "
                     "uses the constraint and skips the scan)"),
    "column-type-change": (ERROR, "ALTER COLUMN ... TYPE rewrites the table under an ACCESS EXCLUSIVE lock and "
                                  "can break the running release",
                           "add a new column, backfill in batches, switch reads, drop the old one later"),
    "rename": (ERROR, "RENAME breaks the running release that still uses the old name",
               "add the new name (column, or a view for a table), migrate code, drop the old name later"),
    "create-index-without-concurrently": (ERROR, "CREATE INDEX without CONCURRENTLY blocks writes to the table "
                                                 "for the whole build",
                                          "CREATE INDEX CONCURRENTLY, outside a transaction"),
    "drop-index-without-concurrently": (WARNING, "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock",
                                        "DROP INDEX CONCURRENTLY, outside a transaction"),
    "constraint-without-not-valid": (ERROR, "ADD CONSTRAINT (FOREIGN KEY or CHECK) validates every row under a lock "
                                            "that blocks writes",
                                     "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a separate statement"),
    "unique-constraint-without-index": (ERROR, "ADD UNIQUE or PRIMARY KEY builds an index under a lock that blocks "
                                               "writes",
                                        "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"),
    "concurrently-in-transaction": (ERROR, "CONCURRENTLY cannot run inside a transaction block; the migration will "
                                           "fail", "run it in a migration without BEGIN/COMMIT"),
    "missing-lock-timeout": (WARNING, "DDL without a lock_timeout waits behind long queries while every other "
                                      "query queues behind it",
                             "start the migration with SET lock_timeout = '5s' (and retry on timeout)"),
}

ACK = re.compile(r"migration_guard:\s*ignore\s+([a-z\-,\s]+)", re.IGNORECASE)
IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
QUALIFIED = r"(?:%s\.)?%s" % (IDENT, IDENT)


class Statement:
    def __init__(self, sql, line, comments):
        self.sql = sql
        self.line = line
        self.comments = comments
        # keywords in one case and spacing; quoted text was kept as is by the splitter
        self.flat = re.sub(r"\s+", " ", sql).strip()
        self.upper = self.flat.upper()

    def acknowledged(self):
        rules = set()
        for comment in self.comments:
            for match in ACK.finditer(comment):
                rules.update(r.strip().lower() for r in re.split(r"[,\s]+", match.group(1)) if r.strip())
        return rules


def split_statements(text):
    """Statements with the line each starts on and the comments in or just before it."""
    statements = []
    buf, comments = [], []
    line, start_line = 1, None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            comments.append(text[i:end])
            i = end
            continue
        if ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            comments.append(text[i:end])
            line += text.count("\n", i, end)
            i = end
            continue
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if text[end] == ch:
                    if end + 1 < n and text[end + 1] == ch:  # doubled quote
                        end += 2
                        continue
                    break
                end += 1
            chunk = text[i:end + 1]
        elif ch == "$":
            tag = re.match(r"\$[A-Za-z_0-9]*\$", text[i:])
            if tag:
                end = text.find(tag.group(0), i + len(tag.group(0)))
                end = n if end == -1 else end + len(tag.group(0)) - 1
                chunk = text[i:end + 1]
            else:
                chunk = ch
        elif ch == ";":
            if buf and "".join(buf).strip():
                statements.append(Statement("".join(buf).strip(), start_line, comments))
            buf, comments, start_line = [], [], None
            i += 1
            continue
        else:
            chunk = ch
        if start_line is None and not chunk.isspace():
            start_line = line
        buf.append(chunk)
        line += chunk.count("\n")
        i += len(chunk)
    if "".join(buf).strip():
        statements.append(Statement("".join(buf).strip(), start_line, comments))
    return statements


def _table_of(statement):
    match = re.match(r"ALTER TABLE (?:IF EXISTS )?(?:ONLY )?(%s)" % QUALIFIED, statement.flat, re.IGNORECASE)
    return _name(match.group(1)) if match else None


def _name(text):
    return text.replace('"', "").lower().split(".")[-1]


def _created_tables(statements):
    created = set()
    for st in statements:
        match = re.match(r"CREATE (?:UNLOGGED |TEMP |TEMPORARY )?TABLE (?:IF NOT EXISTS )?(%s)" % QUALIFIED,
                         st.flat, re.IGNORECASE)
        if match:
            created.add(_name(match.group(1)))
    return created


DDL = re.compile(r"^(ALTER|CREATE|DROP)\b")


class MigrationError(RunbookError):
    """The migrations cannot be read as given."""


def migration_files(paths):
    """The migration files of ``paths`` (files, or directories searched for .sql files), in name order."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(root, name) for root, _dirs, names in os.walk(path)
                           for name in names if name.endswith(".sql"))
            if not found:
                raise MigrationError("paths: %s holds no .sql file" % path)
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise MigrationError("paths: %s does not exist" % path)
    return files


def lint_files(files):
    """The findings of every file, in order."""
    findings = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise MigrationError("cannot read the migration %s: %s" % (path, exc))
        findings += lint(text, path)
    return findings


def lint(text, source="<statements>"):
    """Findings (dicts) for one migration's SQL."""
    statements = split_statements(text)
    created = _created_tables(statements)
    in_transaction = any(st.upper in ("BEGIN", "START TRANSACTION", "BEGIN TRANSACTION") for st in statements)
    findings = []
    lock_timeout_set = False
    warned_lock_timeout = False

    def add(rule, st):
        severity, message, fix = RULES[rule]
        findings.append(dict(rule=rule, severity=severity, file=source, line=st.line, statement=st.flat[:200],
                             message=message, fix=fix, acknowledged=rule in st.acknowledged()))

    for st in statements:
        up = st.upper
        if re.match(r"^SET (LOCAL )?LOCK_TIMEOUT\b", up):
            lock_timeout_set = True
            continue
        table = _table_of(st)
        new_table = table in created if table else False
        if DDL.match(up) and not lock_timeout_set and not warned_lock_timeout and not (
                up.startswith("CREATE TABLE") or up.startswith("CREATE INDEX CONCURRENTLY")
                or up.startswith("CREATE UNIQUE INDEX CONCURRENTLY")):
            add("missing-lock-timeout", st)
            warned_lock_timeout = True
        if re.match(r"^DROP TABLE\b", up):
            add("drop-table", st)
        if up.startswith("ALTER TABLE") and not new_table:
            # DROP [COLUMN] name; not DROP CONSTRAINT, nor ALTER COLUMN x DROP DEFAULT / NOT NULL / IDENTITY
            if re.search(r"(?:^|,)\s*(?:ALTER TABLE .*? )?DROP (?:COLUMN )?(?:IF EXISTS )?"
                         r"(?!CONSTRAINT\b|DEFAULT\b|NOT NULL\b|IDENTITY\b|EXPRESSION\b)%s" % IDENT, up):
                add("drop-column", st)
            for column in re.findall(r"\bADD (?:COLUMN )?(?:IF NOT EXISTS )?(.*?)(?=, ADD |$)", up):
                if "NOT NULL" in column and "DEFAULT" not in column and not column.startswith(
                        ("CONSTRAINT", "FOREIGN KEY", "CHECK", "UNIQUE", "PRIMARY KEY")):
                    add("not-null-without-default", st)
                    break
            if re.search(r"\bALTER (?:COLUMN )?%s SET NOT NULL\b" % IDENT, up):
                add("set-not-null", st)
            if re.search(r"\bALTER (?:COLUMN )?%s (?:SET DATA )?TYPE\b" % IDENT, up):
                add("column-type-change", st)
            if re.search(r"\bRENAME (?:COLUMN )?%s TO\b" % IDENT, up) or re.search(r"\bRENAME TO\b", up):
                add("rename", st)
            if re.search(r"\bADD (?:CONSTRAINT %s )?(?:FOREIGN KEY|CHECK)\b" % IDENT, up) and "NOT VALID" not in up:
                add("constraint-without-not-valid", st)
            if re.search(r"\bADD (?:CONSTRAINT %s )?(?:UNIQUE|PRIMARY KEY)\b" % IDENT, up) and "USING INDEX" not in up:
                add("unique-constraint-without-index", st)
        elif re.match(r"^ALTER TABLE\b.*\bRENAME TO\b", up):
            add("rename", st)
        index = re.match(r"^CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?.*? ON (?:ONLY )?(%s)" % QUALIFIED, up)
        if index:
            if index.group(1) and in_transaction:
                add("concurrently-in-transaction", st)
            elif not index.group(1) and _name(index.group(2)) not in created:
                add("create-index-without-concurrently", st)
        drop_index = re.match(r"^DROP INDEX (CONCURRENTLY )?", up)
        if drop_index:
            if drop_index.group(1) and in_transaction:
                add("concurrently-in-transaction", st)
            elif not drop_index.group(1):
                add("drop-index-without-concurrently", st)
    return findings
