"""Backup names and manifests."""

import datetime

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf

WHEN = datetime.datetime(2026, 11, 22, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)


def test_a_backup_name_carries_its_label_and_utc_second():
    assert mf.backup_name("app", WHEN) == "app_20261122T030405Z"
    assert mf.parse_name("app_20261122T030405Z") == ("app", WHEN.replace(microsecond=0))


def test_labels_with_underscores_parse_back():
    assert mf.parse_name("my_app_db_20261122T030405Z")[0] == "my_app_db"


@pytest.mark.parametrize("name", ["app", "app_2026", "app_20261122T030405", "../x_20261122T030405Z",
                                  "app_20261122T030405Z.dump"])
def test_names_that_are_not_ours_do_not_parse(name):
    assert mf.parse_name(name) is None


@pytest.mark.parametrize("fmt,compression,suffix", [
    ("plain", "zstd", ".sql.zst"), ("plain", "gzip", ".sql.gz"), ("plain", "none", ".sql"),
    ("custom", "zstd", ".dump.zst"), ("custom", "none", ".dump"), ("directory", "gzip", ".dir"),
])
def test_the_file_suffix_says_format_and_compression(fmt, compression, suffix):
    assert mf.data_file_name("app_20261122T030405Z", fmt, compression) == "app_20261122T030405Z" + suffix


@pytest.mark.parametrize("name,safe", [("app", True), ("app-prod.v2", True), ("_x", True), ("../etc", False),
                                       ("a/b", False), ("a;b", False), ("a b", False), ("$(id)", False),
                                       ("", False), ("a..b", False), ("x" * 64, False)])
def test_only_path_and_shell_safe_names_are_accepted(name, safe):
    assert mf.is_safe_name(name) is safe


def test_manifest_file_names_map_back_to_the_backup():
    assert mf.name_of_manifest_file("app_20261122T030405Z.manifest.json") == "app_20261122T030405Z"
    assert mf.name_of_manifest_file("app_20261122T030405Z.json") is None
    assert mf.name_of_manifest_file("notes.manifest.json") is None


def good_manifest():
    return dict(tool=mf.TOOL, name="app_20261122T030405Z", file="app_20261122T030405Z.dump.zst", format="custom",
                compression="zstd")


def test_a_manifest_round_trips():
    assert mf.loads(mf.dumps(good_manifest()), "app_20261122T030405Z") == good_manifest()


@pytest.mark.parametrize("change", [dict(tool="someone-else"), dict(name="app_20261122T000000Z"),
                                    dict(file="../../etc/passwd"), dict(format="tar")])
def test_a_manifest_that_is_not_ours_or_points_elsewhere_is_rejected(change):
    manifest = dict(good_manifest(), **change)
    assert mf.loads(mf.dumps(manifest), "app_20261122T030405Z") is None


def test_garbage_is_not_a_manifest():
    assert mf.loads(b"{not json", None) is None
    assert mf.loads(b"[1, 2]", None) is None
