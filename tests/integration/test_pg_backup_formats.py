"""Every format and compression, from a host connection and from inside a container, gives a
backup that restores with the stock tools, and the restored row counts equal the manifest's and the
source's."""

import json
import os
import stat

import pytest

from conftest import exact_counts, restore_into, run_module

COMBINATIONS = [
    ("custom", "zstd"), ("custom", "gzip"), ("custom", "none"),
    ("plain", "zstd"), ("plain", "gzip"), ("plain", "none"),
    ("directory", "gzip"), ("directory", "none"),
]


def backup_and_prove(source, source_args, host_pg, dest, fmt, compression, restore_db):
    result = run_module("pg_backup", dict(source_args, database="app", dest=dest, format=fmt,
                                          compression=compression))
    assert not result.get("failed"), result.get("msg")
    manifest = result["manifest"]
    assert result["format"] == fmt and result["compression"] == compression
    assert manifest["verified"] is True
    assert manifest["row_counts_mode"] == "exact"
    source_counts = exact_counts(source.psql, "app")
    assert manifest["row_counts"] == source_counts
    assert sum(source_counts.values()) > 100000

    # files 0600, the directory 0700, the manifest beside the backup and equal to the result
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(result["path"]).st_mode) == (0o700 if fmt == "directory" else 0o600)
    with open(result["manifest_path"]) as fh:
        assert json.load(fh) == manifest
    assert not [f for f in os.listdir(dest) if f.endswith(".partial")]

    restore_into(host_pg, result["path"], manifest, restore_db)
    assert exact_counts(host_pg.psql, restore_db) == manifest["row_counts"]
    return result


@pytest.mark.parametrize("fmt,compression", COMBINATIONS)
def test_a_host_backup_restores_with_the_manifests_row_counts(host_pg, dest, fmt, compression):
    result = backup_and_prove(host_pg, host_pg.connection(), host_pg, dest, fmt, compression,
                              "restored_host_%s_%s" % (fmt, compression))
    assert result["manifest"]["source"]["mode"] == "host"


@pytest.mark.parametrize("fmt,compression", COMBINATIONS)
def test_a_container_backup_restores_with_the_manifests_row_counts(container_pg, host_pg, dest, fmt, compression):
    result = backup_and_prove(container_pg, dict(container=container_pg.name), host_pg, dest, fmt, compression,
                              "restored_container_%s_%s" % (fmt, compression))
    assert result["manifest"]["source"] == dict(mode="container", container=container_pg.name, host=None)


def test_the_default_is_a_zstd_custom_archive_verified_with_pg_restore(host_pg, dest):
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    assert result["path"].endswith(".dump.zst")
    with open(result["path"], "rb") as fh:
        assert fh.read(4) == b"\x28\xb5\x2f\xfd"
    verification = result["manifest"]["verification"]
    assert verification["method"] == "sha256+decompress+pg_restore-list"
    assert verification["tables_in_archive"] == result["manifest"]["tables"] == 6


def test_directory_format_dumps_with_parallel_jobs(host_pg, dest):
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, format="directory",
                                          jobs=2))
    assert not result.get("failed"), result.get("msg")
    assert result["manifest"]["jobs"] == 2
    assert result["compression"] == "gzip"  # pg_dump 15 cannot write zstd in the directory format
    files = {f["path"] for f in result["manifest"]["files"]}
    assert "toc.dat" in files and len(files) == 7
    assert result["size"] == sum(f["size"] for f in result["manifest"]["files"])


def test_directory_format_with_zstd_on_pg_dump_15_is_refused_before_anything_is_written(host_pg, dest):
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, format="directory",
                                          compression="zstd"))
    assert result["failed"]
    assert "compression=zstd with format=directory needs pg_dump 16" in result["msg"]
    assert not os.path.exists(dest)


def test_globals_only_backs_up_roles(host_pg, dest):
    host_pg.psql("postgres", "DO $$ BEGIN CREATE ROLE app_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest))
    assert not result.get("failed"), result.get("msg")
    assert os.path.basename(result["path"]).startswith("globals_") and result["path"].endswith(".sql.zst")
    import zstandard
    with open(result["path"], "rb") as fh:
        text = zstandard.ZstdDecompressor().decompressobj().decompress(fh.read()).decode()
    assert "CREATE ROLE app_reader;" in text
    assert result["manifest"]["kind"] == "globals" and result["manifest"]["row_counts_mode"] == "none"


def test_all_databases_restore_with_psql(host_pg, dest):
    result = run_module("pg_backup", dict(host_pg.connection(), all_databases=True, dest=dest, compression="gzip"))
    assert not result.get("failed"), result.get("msg")
    assert result["path"].endswith(".sql.gz")
    import gzip
    with gzip.open(result["path"], "rt") as fh:
        text = fh.read()
    assert "\\connect app" in text and "CREATE TABLE public.refresh_tokens" in text
    assert text.rstrip().endswith("-- PostgreSQL database cluster dump complete\n--")


def test_row_counts_estimate_records_planner_estimates(host_pg, dest):
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, row_counts="estimate"))
    assert not result.get("failed"), result.get("msg")
    counts = result["manifest"]["row_counts"]
    assert result["manifest"]["row_counts_mode"] == "estimate"
    assert set(counts) == set(exact_counts(host_pg.psql, "app"))
    assert counts["public.users"] == pytest.approx(20000, rel=0.2)
