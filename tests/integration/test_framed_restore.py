"""The default backup is cut into frames at its tables' data, and restored in parallel straight from them:
same schema, same rows, same sequence values as the source, on a database with what real ones have
(foreign keys, indexes, triggers, views, a materialized view, partitions, grants, many small tables, tables
large enough to be loaded by different jobs while the others' indexes are built); the
stored file is still one zstd stream to the stock tools; a restore that fails midway leaves the target as
it was and nothing behind."""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess

import pytest
import zstandard
from ansible_collections.stackops.runbook.plugins.module_utils._archive_layout import ArchiveLayout
from ansible_collections.stackops.runbook.plugins.module_utils._restore import section_lines
from conftest import container_tmp, exact_counts, inside_container, pids_of, run_module

SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, note text);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id),
                     total numeric(10, 2) NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX orders_placed_at ON orders (placed_at);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, 'x');
  RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 900;
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, payload text) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_at ON events (at);
INSERT INTO customers (email, note)
  SELECT 'c' || i || '@example.com', CASE WHEN i % 3 = 0 THEN NULL ELSE repeat(md5(i::text), 4) END
  FROM generate_series(1, 12000) i;
INSERT INTO orders (customer_id, total, placed_at)
  SELECT 1 + i % 12000, (i % 1000) + 0.5, '2026-01-01'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 40000) i;
INSERT INTO events SELECT i, '2025-06-01'::date + (i % 400), repeat('e', 50) FROM generate_series(1, 30000) i;
CREATE TABLE documents (id int PRIMARY KEY, customer_id bigint REFERENCES customers (id), body text);
INSERT INTO documents SELECT i, 1 + i % 12000, repeat(md5(i::text), 20) FROM generate_series(1, 40000) i;
CREATE INDEX documents_customer ON documents (customer_id);
CREATE TABLE archive (id int, body text);
INSERT INTO archive SELECT i, repeat(md5((-i)::text), 20) FROM generate_series(1, 40000) i;
CREATE INDEX archive_id ON archive (id);
CREATE MATERIALIZED VIEW customer_totals AS
  SELECT customer_id, sum(total) AS total FROM orders GROUP BY customer_id;
CREATE UNIQUE INDEX customer_totals_id ON customer_totals (customer_id);
GRANT SELECT ON orders, customers TO shop_reader;
COMMENT ON TABLE orders IS 'what was bought';
COMMENT ON INDEX orders_placed_at IS 'by time';
COMMENT ON TRIGGER customers_touch ON customers IS 'notes are never empty';
SELECT setval('orders_id_seq', 50000);
"""


def small_tables():
    return "".join("CREATE TABLE small_%d (id int PRIMARY KEY, v text); INSERT INTO small_%d SELECT i, 'v' || i "
                   "FROM generate_series(1, %d) i;\n" % (n, n, n * 3) for n in range(1, 41))


def make_shop(pg, tmp_path):
    pg.psql("postgres", "DROP DATABASE IF EXISTS shop")
    pg.psql("postgres", "CREATE DATABASE shop")
    pg.psql("postgres", "DO $$ BEGIN CREATE ROLE shop_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    script = tmp_path / "shop.sql"
    script.write_text(SCHEMA + small_tables())
    pg.psql_file("shop", str(script))


def schema(pg, database):
    out = subprocess.run(["pg_dump", "--schema-only", "-d", database], capture_output=True, text=True, check=True,
                         env=pg.env()).stdout
    # without comments and the random key of pg_dump's \restrict lines
    return [line for line in out.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict"))]


def state(pg, database):
    return dict(
        counts=exact_counts(pg.psql, database),
        sequence=pg.psql(database, "SELECT last_value FROM orders_id_seq"),
        matview=pg.psql(database, "SELECT count(*), sum(total) FROM customer_totals"),
        grants=pg.psql(database, "SELECT has_table_privilege('shop_reader', 'orders', 'SELECT')"),
        constraints=pg.psql(database, "SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace"),
        indexes=pg.psql(database, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"),
        valid=pg.psql(database, "SELECT bool_and(indisvalid) FROM pg_index"))


def damage_last_table(made):
    """Damage the middle of the last table's rows in a way its checksum cannot see (the manifest follows it):
    one job's pg_restore fails while the others load."""
    manifest = made["manifest"]
    last = manifest["layout"]["blocks"][-1][1]
    with open(made["path"], "r+b") as fh:
        fh.seek(last + 40)
        fh.write(b"\t\t\t\t")
    manifest["sha256"] = subprocess.run(["sha256sum", made["path"]], capture_output=True, text=True,
                                        check=True).stdout.split()[0]
    with open(made["manifest_path"], "w") as fh:
        json.dump(manifest, fh)


def scratch_dir(tmp_path, monkeypatch):
    """TMPDIR of the modules, to see what they leave."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    return scratch


def test_a_framed_backup_restores_in_parallel_to_the_same_schema_and_rows(host_pg, tmp_path, monkeypatch):
    make_shop(host_pg, tmp_path)
    scratch = scratch_dir(tmp_path, monkeypatch)
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(host_pg.connection(), database="shop", dest=dest))
    assert not made.get("failed"), made.get("msg")
    layout = made["manifest"]["layout"]
    # every table has its data block (a partitioned one's rows are its partitions'); the data is cut into
    # frames, and small tables share them
    assert len(layout["blocks"]) == made["manifest"]["verification"]["tables_in_archive"] == 46
    assert 2 <= len(layout["frames"]) < len(layout["blocks"])
    assert made["manifest"]["uncompressed_size"] > 3 * 16 * 2 ** 20  # several units of work (16 MiB at least each)
    # still one zstd stream to the stock tools
    listed = subprocess.run("zstd -dc %s | pg_restore --list" % made["path"], shell=True, capture_output=True,
                            text=True, check=True).stdout
    assert listed.count(" TABLE DATA ") == 46
    # the restore's lists of each section are pg_restore's own (read from the table of contents, no process)
    toc = ArchiveLayout()
    with open(made["path"], "rb") as fh:
        toc.feed(zstandard.ZstdDecompressor().decompressobj().decompress(fh.read(layout["frames"][0][0])))
    ours = section_lines(toc.entries)
    for number, section in ((3, "data"), (4, "post-data")):
        theirs = subprocess.run("zstd -dc %s | pg_restore --list --section=%s" % (made["path"], section), shell=True,
                                capture_output=True, text=True, check=True).stdout
        assert [int(line.split(";")[0]) for line in ours[number]] == [
            int(line.split(";")[0]) for line in theirs.splitlines() if line and not line.startswith(";")]

    for jobs in (2, 3):
        target = "shop_copy_%d" % jobs
        host_pg.psql("postgres", "DROP DATABASE IF EXISTS %s" % target)
        result = run_module("pg_restore", dict(host_pg.connection(), backup=made["path"], target_database=target,
                                               jobs=jobs))
        assert not result.get("failed"), result.get("msg")
        assert result["jobs"] == jobs and result["differences"] == {} and not result.get("warnings")
        assert state(host_pg, target) == state(host_pg, "shop")
        assert schema(host_pg, target) == schema(host_pg, "shop")
    # nothing left where the restore worked: no table of contents, no lists
    assert os.listdir(scratch) == []


def test_a_frame_that_fails_midway_fails_the_restore_and_leaves_the_target_as_it_was(host_pg, tmp_path, monkeypatch):
    make_shop(host_pg, tmp_path)
    scratch = scratch_dir(tmp_path, monkeypatch)
    dest = tmp_path / "backups"
    made = run_module("pg_backup", dict(host_pg.connection(), database="shop", dest=str(dest), compression="none"))
    assert not made.get("failed"), made.get("msg")
    damage_last_table(made)
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS shop_target")
    host_pg.psql("postgres", "CREATE DATABASE shop_target")
    host_pg.psql("shop_target", "CREATE TABLE keep_me (id int); INSERT INTO keep_me SELECT generate_series(1, 7)")
    result = run_module("pg_restore", dict(host_pg.connection(), backup=made["path"], target_database="shop_target",
                                           confirm="shop_target", jobs=2))
    assert result["failed"] and "pg_restore" in result["msg"]
    assert host_pg.psql("shop_target", "SELECT count(*) FROM keep_me") == "7"
    assert host_pg.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'shop_target%'"
                        ) == "shop_target"
    assert os.listdir(scratch) == []
    assert subprocess.run(["pgrep", "-f", "pg_restore.*shop_target"], capture_output=True, check=False).returncode == 1


@pytest.mark.parametrize("where", ["table of contents", "rows"])
def test_a_file_damaged_where_the_restore_reads_it_fails_it_with_nothing_changed(host_pg, tmp_path, monkeypatch,
                                                                                 where):
    """The default backup is hashed while it restores into the scratch database (``toc_sha256``): damage to the
    table of contents (all of the archive's SQL) is found before it runs, damage to the rows before the scratch
    copy could replace the target; either way the restore says the backup does not match its manifest, and
    the target, the databases and the scratch directory are as they were."""
    make_shop(host_pg, tmp_path)
    scratch = scratch_dir(tmp_path, monkeypatch)
    made = run_module("pg_backup", dict(host_pg.connection(), database="shop", dest=str(tmp_path / "backups")))
    assert not made.get("failed"), made.get("msg")
    layout = made["manifest"]["layout"]
    with open(made["path"], "rb") as fh:
        assert layout["toc_sha256"] == hashlib.sha256(fh.read(layout["frames"][0][0])).hexdigest()
    # one byte in the middle of the first frame, or of the last (its checksum the manifest does not follow)
    offset = layout["frames"][0][0] // 2 if where == "table of contents" else (
        layout["frames"][-1][0] + made["manifest"]["size"]) // 2
    with open(made["path"], "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS shop_target")
    host_pg.psql("postgres", "CREATE DATABASE shop_target")
    host_pg.psql("shop_target", "CREATE TABLE keep_me (id int); INSERT INTO keep_me SELECT generate_series(1, 7)")
    result = run_module("pg_restore", dict(host_pg.connection(), backup=made["path"], target_database="shop_target",
                                           confirm="shop_target", jobs=2))
    assert result["failed"]
    assert "the backup does not match its manifest, so nothing was changed" in result["msg"]
    assert ("its table of contents" in result["msg"]) == (where == "table of contents")
    assert host_pg.psql("shop_target", "SELECT count(*) FROM keep_me") == "7"
    assert host_pg.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'shop_target%'"
                        ) == "shop_target"
    assert os.listdir(scratch) == []
    assert subprocess.run(["pgrep", "-f", "pg_restore.*shop_target"], capture_output=True, check=False).returncode == 1


def test_a_framed_backup_restores_in_parallel_into_a_container_through_named_pipes(container_pg, tmp_path):
    """Inside a compose stack's postgres container the frames reach each pg_restore through a named pipe this host
    writes to (no copy of every byte through the docker engine): same rows and objects, nothing left in the
    container, no pg_restore still running there."""
    make_shop(container_pg, tmp_path)
    before = container_tmp(container_pg)
    made = run_module("pg_backup", dict(container=container_pg.name, database="shop", dest=str(tmp_path / "b")))
    assert not made.get("failed"), made.get("msg")
    assert len(made["manifest"]["layout"]["frames"]) >= 2
    container_pg.psql("postgres", "DROP DATABASE IF EXISTS shop_copy")
    result = run_module("pg_restore", dict(container=container_pg.name, backup=made["path"],
                                           target_database="shop_copy", jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert result["jobs"] == 2 and result["differences"] == {}
    assert state(container_pg, "shop_copy") == state(container_pg, "shop")
    assert container_tmp(container_pg) == before
    assert pids_of("pg_restore", inside_container(container_pg.name)) == []


def test_a_job_failing_inside_a_container_fails_the_restore_with_nothing_left_there(container_pg, tmp_path):
    """One pg_restore in the container stops reading its pipe midway: the restore fails (it does not wait on
    the pipe), the target keeps its rows, and neither the scratch database nor a pipe nor a process stays."""
    make_shop(container_pg, tmp_path)
    before = container_tmp(container_pg)
    made = run_module("pg_backup", dict(container=container_pg.name, database="shop", dest=str(tmp_path / "b"),
                                        compression="none"))
    assert not made.get("failed"), made.get("msg")
    damage_last_table(made)
    container_pg.psql("postgres", "DROP DATABASE IF EXISTS shop_target")
    container_pg.psql("postgres", "CREATE DATABASE shop_target")
    container_pg.psql("shop_target", "CREATE TABLE keep_me (id int); INSERT INTO keep_me SELECT generate_series(1, 7)")
    result = run_module("pg_restore", dict(container=container_pg.name, backup=made["path"],
                                           target_database="shop_target", confirm="shop_target", jobs=2), timeout=300)
    assert result["failed"] and "pg_restore" in result["msg"]
    assert container_pg.psql("shop_target", "SELECT count(*) FROM keep_me") == "7"
    assert container_pg.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database "
                                         "WHERE datname LIKE 'shop_target%'") == "shop_target"
    assert container_tmp(container_pg) == before
    assert pids_of("pg_restore", inside_container(container_pg.name)) == []


def test_named_pipes_into_a_container_carry_the_bytes_and_follow_no_link_planted_there(container_pg):
    """The pipe's bytes arrive whole, owned by the container's user; a directory the container replaced with a
    link (to the host's root, were it followed) is refused, and so is any path that is not a private directory."""
    import docker

    from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerRunner
    from ansible_collections.stackops.runbook.plugins.module_utils._runner import run_fed

    runner = ContainerRunner(docker.from_env(), container_pg.name, user="postgres")
    rc, out, _err = runner.run(["mktemp", "-d", "/tmp/stackops-restore.XXXXXX"])
    directory = out.decode().strip()
    pipes = runner.pipes(directory)
    assert pipes is not None
    try:
        chunks = [os.urandom(1024 * 1024) for _chunk in range(3)]
        feed = pipes.feed(["sh", "-c", 'stat -c %U "$0/stdin-1"; wc -c', directory])
        assert fcntl.fcntl(feed._pipe.fd, fcntl.F_GETPIPE_SZ) == 2 ** 20  # both sides wake a sixteenth as often
        rc, out, err = run_fed(feed, chunks)
        assert (rc, out.decode().split()) == (0, ["postgres", str(3 * 2 ** 20)]), err
        # a program that stops reading: the writes end, its exit code says so
        rc, _out, _err = run_fed(pipes.feed(["sh", "-c", "head -c 10 >/dev/null; exit 3"]), chunks)
        assert rc == 3
        assert runner.run(["ls", "-A", directory])[1] == b""  # each pipe is removed with its program
    finally:
        pipes.close()
    runner.run(["sh", "-c", 'rm -rf "$0" && ln -s / "$0"', directory])
    assert runner.pipes(directory) is None
    assert runner.pipes("/etc") is None and runner.pipes("/tmp/stackops-restore.ab/../..") is None
    runner.run(["rm", "-f", directory])


def test_a_scratch_directory_in_a_container_is_removed_from_here_with_no_exec(container_pg):
    """Its files and pipes are removed through the directory this host opened, the last step of every restore into
    a container, so it costs no ``rm -rf`` exec; when something there is not ours to remove that way (a directory
    pg_restore would never make), the exec still removes it all."""
    import docker

    from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerRunner
    from ansible_collections.stackops.runbook.plugins.module_utils._restore import RestoreScratch
    from ansible_collections.stackops.runbook.plugins.module_utils._runner import run_fed

    runner = ContainerRunner(docker.from_env(), container_pg.name, user="postgres")
    execs = []
    run = runner.run
    runner.run = lambda argv, input_chunks=None: execs.append(argv[0]) or run(argv, input_chunks)
    for planted in (False, True):
        before = container_tmp(container_pg)
        scratch = RestoreScratch(runner)
        assert scratch.pipes is not None
        listed = scratch.put("rest.list", [b"1; TABLE DATA\n"])
        assert run_fed(scratch.feed(["cat", listed, "-"]), [b"rows"])[:2] == (0, b"1; TABLE DATA\nrows")
        if planted:
            run(["mkdir", scratch.path + "/not-ours"])
        del execs[:]
        scratch.remove()
        scratch.remove()  # safe to call again: nothing more happens
        assert container_tmp(container_pg) == before
        assert execs == (["rm"] if planted else [])


def test_a_psql_session_costs_one_exec_and_a_missing_psql_is_named(container_pg, tmp_path):
    """Whether psql is there is asked only when it did not start (asking first cost every session in a container
    an exec); where it is missing, the error still says so and how to fix it, in a container and on this host."""
    import docker

    from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerRunner
    from ansible_collections.stackops.runbook.plugins.module_utils._postgres import PostgresError, PsqlSession
    from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner
    from conftest import images_env

    client = docker.from_env()
    runner = ContainerRunner(client, container_pg.name, user="postgres")
    execs = []
    create = client.api.exec_create
    client.api.exec_create = lambda container, cmd, **kwargs: execs.append(cmd[0]) or create(container, cmd, **kwargs)
    session = PsqlSession(runner, "postgres")
    assert session.scalar("SELECT 41 + 1;") == "42"
    session.close()
    assert execs == ["psql"]

    bare = client.containers.run(images_env()["STACKOPS_BARE_IMAGE"], ["sleep", "300"], detach=True,
                                 name="stackops-no-psql-%s" % os.urandom(4).hex())
    try:
        with pytest.raises(PostgresError, match="psql is not available in the container; install the PostgreSQL"):
            PsqlSession(ContainerRunner(client, bare.id, user="nobody"), "postgres").query("SELECT 1;")
    finally:
        bare.remove(force=True)
    with pytest.raises(PostgresError, match="psql is not available on this host; install the PostgreSQL"):
        PsqlSession(LocalRunner(bin_dir=str(tmp_path)), "postgres")


@pytest.mark.skipif(os.path.basename(os.path.realpath(shutil.which("psql") or "")) != "pg_wrapper",
                    reason="psql in PATH is not Debian's pg_wrapper here")
def test_on_debian_a_client_program_starts_as_itself_not_through_pg_wrapper(host_pg):
    """Debian's psql and pg_restore in PATH are pg_wrapper, a Perl script (30-100 ms of CPU before each of the
    nine programs a restore of the benchmark database starts); with a host given its pick is known, and that
    program is started."""
    from ansible_collections.stackops.runbook.plugins.module_utils._postgres import PsqlSession
    from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner

    newest = max((entry for entry in os.listdir("/usr/lib/postgresql") if entry.replace(".", "").isdigit()
                  and os.access("/usr/lib/postgresql/%s/bin/psql" % entry, os.X_OK)), key=float)
    session = PsqlSession(LocalRunner(env=host_pg.env()), "postgres")
    started = os.readlink("/proc/%d/exe" % session.proc.proc.pid)  # pg_wrapper would still be perl now
    assert session.scalar("SELECT 41 + 1;") == "42"
    session.close()
    assert started == os.path.realpath("/usr/lib/postgresql/%s/bin/psql" % newest)


def test_a_container_is_asked_once_for_a_program_it_has(container_pg):
    """Every psql session asks whether the container has psql, and each asking is an exec: a program found is
    not asked for again; one not found is, each time (it may be installed meanwhile)."""
    import docker

    from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerRunner

    runner = ContainerRunner(docker.from_env(), container_pg.name, user="postgres")
    execs = []
    run = runner.run
    runner.run = lambda argv, input_chunks=None: execs.append(argv) or run(argv, input_chunks)
    assert runner.has_program("psql") and runner.has_program("psql") and runner.has_program("pg_restore")
    assert not runner.has_program("no-such-program") and not runner.has_program("no-such-program")
    assert [argv[-1] for argv in execs] == ["psql", "pg_restore", "no-such-program", "no-such-program"]


ODD_NAMES = '''
CREATE SCHEMA "Odd ""schema""";
CREATE TABLE "Odd ""schema"""."it's a table" (id int PRIMARY KEY, v text);
INSERT INTO "Odd ""schema"""."it's a table" SELECT i, repeat('x', 100) FROM generate_series(1, 3000) i;
CREATE TABLE "Café" (id int);
INSERT INTO "Café" SELECT generate_series(1, 5);
CREATE TABLE nothing_in_it (id int);
'''


def test_a_framed_restore_counts_each_tables_rows_as_it_is_in_and_returns_them_all(host_pg, tmp_path):
    """The rows of each table are counted once its data is in (by an idle job, or beside the final pass), not
    after the restore: what restore_into returns are the counts of every table pg_restore compares with the
    manifest, names that need quoting and tables with no rows included."""
    from ansible_collections.stackops.runbook.plugins.module_utils._restore import restore_into
    from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner
    from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage

    make_shop(host_pg, tmp_path)
    script = tmp_path / "odd.sql"
    script.write_text(ODD_NAMES)
    host_pg.psql_file("shop", str(script))
    dest = str(tmp_path / "backups")
    made = run_module("pg_backup", dict(host_pg.connection(), database="shop", dest=dest))
    assert not made.get("failed"), made.get("msg")
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS shop_counted")
    host_pg.psql("postgres", "CREATE DATABASE shop_counted")
    how = restore_into(LocalRunner(env=host_pg.env()), LocalStorage(dest), made["manifest"], "shop_counted", jobs=2)
    assert how["jobs"] == 2
    assert how["row_counts"] == exact_counts(host_pg.psql, "shop_counted") == made["manifest"]["row_counts"]
    assert how["row_counts"]['Odd "schema".it\'s a table'] == 3000 and how["row_counts"]["public.nothing_in_it"] == 0
    assert how["row_counts"]["public.Café"] == 5


def test_a_framed_restore_loads_every_tables_rows_frozen(host_pg, tmp_path):
    """Each table's rows are loaded with COPY FREEZE after a TRUNCATE in the same transaction: every page of
    the restored tables is all-frozen from the start (no hint bits for the first reader to set, nothing for
    a vacuum to freeze), partitions and names that need quoting included, and the rows are the source's."""
    make_shop(host_pg, tmp_path)
    script = tmp_path / "odd.sql"
    script.write_text(ODD_NAMES)
    host_pg.psql_file("shop", str(script))
    made = run_module("pg_backup", dict(host_pg.connection(), database="shop", dest=str(tmp_path / "backups")))
    assert not made.get("failed"), made.get("msg")
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS shop_frozen")
    result = run_module("pg_restore", dict(host_pg.connection(), backup=made["path"], target_database="shop_frozen",
                                           jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert result["jobs"] == 2 and result["differences"] == {}
    host_pg.psql("shop_frozen", "CREATE EXTENSION pg_visibility")
    pages = json.loads(host_pg.psql("shop_frozen", """
        SELECT json_object_agg(c.oid::regclass::text, (SELECT bool_and(all_frozen) FROM pg_visibility_map(c.oid)))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND pg_relation_size(c.oid) > 0"""))
    assert len(pages) >= 45 and {'"Odd ""schema"""."it\'s a table"', '"Café"', "events_2025", "orders"} <= set(pages)
    assert [table for table, frozen in pages.items() if not frozen] == []
    assert exact_counts(host_pg.psql, "shop_frozen") == exact_counts(host_pg.psql, "shop")


def test_a_row_counter_counts_the_tables_it_is_given_then_every_other_one(host_pg, tmp_path):
    from ansible_collections.stackops.runbook.plugins.module_utils._restore import RowCounter
    from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner

    host_pg.psql("postgres", "DROP DATABASE IF EXISTS counted")
    host_pg.psql("postgres", "CREATE DATABASE counted")
    script = tmp_path / "odd.sql"
    script.write_text(ODD_NAMES)
    host_pg.psql_file("counted", str(script))
    counter = RowCounter(LocalRunner(env=host_pg.env()), "counted")
    try:
        counter.count([])
        assert counter.counts == {}
        counter.count([('Odd "schema"', "it's a table"), ("public", "no_such_table")])
        assert counter.counts == {'Odd "schema".it\'s a table': 3000}
        host_pg.psql("counted", "INSERT INTO \"Odd \"\"schema\"\"\".\"it's a table\" VALUES (0, 'counted already')")
        # the tables counted keep their counts (their rows are in when they are counted); the rest are counted now
        assert counter.finish() == {'Odd "schema".it\'s a table': 3000, "public.Café": 5, "public.nothing_in_it": 0}
    finally:
        counter.close()
