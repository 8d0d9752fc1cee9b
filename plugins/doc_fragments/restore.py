# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a database backup is restored: shared by the modules that restore one (pg_restore, restore_drill).
    DOCUMENTATION = r"""
options:
  jobs:
    description:
      - Parallel restore jobs for custom and directory archives (plain SQL is one stream).
      - Defaults to the number of CPUs of the host the module runs on, at most 4. C(1) restores as one stream.
      - The default backup (a custom archive, which pg_backup cuts into zstd frames at the tables' data and
        describes in its manifest's C(layout)) is restored by the jobs straight from the stored file, each job
        decompressing only its own tables' frames, with no copy of it; only its table of contents is written
        where pg_restore runs (this host's temporary directory, or C(/tmp) of the container), and removed at
        the end. The file's size and sha256 are checked before anything is restored; the frames' content
        checksums and the row counts as they are restored.
      - In that restore each table's rows are loaded frozen (C(TRUNCATE) of the empty table and C(COPY) with the
        C(FREEZE) option, in one transaction of the scratch database), so the restored tables need no hint-bit writes and
        no anti-wraparound vacuum later. Rows loaded through a partitioned table (C(--load-via-partition-root)),
        of an extension's configuration table or of a foreign table are loaded as the archive says.
      - A custom archive without that layout (written before stackops.runbook 0.2.0, by pg_dump itself, or
        holding large objects) is decompressed into a temporary file beside the restore so the jobs can seek in
        it, in the same pass that checks the backup; it needs room for the manifest's C(uncompressed_size).
        Without that room it is restored as one stream, with a warning. The file is removed when the restore
        ends.
    type: int
"""
