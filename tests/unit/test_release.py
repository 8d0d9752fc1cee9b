"""The pure logic of compose_release: the env file rewrite, versions, and which release a rollback picks."""

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils import _compose, _release


def release(version, image, result="succeeded", action="deploy", services=("api",)):
    return dict(version=version, result=result, action=action, services=list(services),
                images={s: dict(ref="app/%s:%s" % (s, version), id="sha256:" + image) for s in services})


def test_the_env_file_keeps_every_other_line_and_changes_the_version_in_place(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# production\nPOSTGRES_PASSWORD='s3cret'\nAPP_VERSION=1.4.2\nexport OTHER=x\n")
    values, lines = _compose.read_env_file(str(path))
    assert values == {"POSTGRES_PASSWORD": "s3cret", "APP_VERSION": "1.4.2", "OTHER": "x"}
    assert _compose.env_file_text(lines, {"APP_VERSION": "1.5.0"}) == (
        "# production\nPOSTGRES_PASSWORD='s3cret'\nAPP_VERSION=1.5.0\nexport OTHER=x\n")
    assert _compose.env_file_text(lines, {"NEW": "1"}).endswith("export OTHER=x\nNEW=1\n")


def test_a_missing_env_file_reads_as_empty(tmp_path):
    assert _compose.read_env_file(str(tmp_path / "none")) == ({}, [])


def test_the_project_name_is_the_folders_as_compose_makes_it():
    assert _compose.default_project_name("/srv/My App.v2") == "myappv2"


@pytest.mark.parametrize("version", ["1.4.2", "2026-11-22.1", "v1.5.0-rc.1", "1.0.0+build.7"])
def test_release_versions_are_image_tags(version):
    _release.check_version(version)


@pytest.mark.parametrize("version", ["", "1.4.2; rm -rf /", "$(id)", "a b", "-1.0", "x" * 129, "1.0/2"])
def test_versions_with_shell_or_path_characters_are_refused(version):
    with pytest.raises(_compose.ComposeError, match="is not a release version"):
        _release.check_version(version)


@pytest.mark.parametrize("reference, tag", [
    ("app/api:1.4.2", "1.4.2"), ("registry:5000/app/api:1.4.2", "1.4.2"), ("registry:5000/app/api", None),
    ("app/api:latest", None), ("app/api@sha256:" + "a" * 64, None)])
def test_the_tag_of_an_image_reference(reference, tag):
    assert _release.tag_of(reference) == tag


def test_previous_is_the_newest_good_release_with_other_images_than_the_one_serving():
    ledger = [release("1.0.0", "a", action="adopt"), release("1.1.0", "b"), release("1.2.0", "c", result="rolled_back"),
              release("1.1.0", "b", action="rollback")]
    assert _release.pick_rollback_target(ledger, ["api"], "previous")["version"] == "1.0.0"


def test_last_good_is_the_newest_good_release_even_when_it_serves_or_nothing_runs():
    ledger = [release("1.0.0", "a", action="adopt"), release("1.1.0", "b"), release("1.2.0", "c", result="rolled_back")]
    assert _release.pick_rollback_target(ledger, ["api"], "last_good")["version"] == "1.1.0"
    assert _release.pick_rollback_target(ledger, ["api"], "last_good", {"api": ["sha256:b"]})["version"] == "1.1.0"
    with pytest.raises(_compose.ComposeError, match="no good release of api to roll back to"):
        _release.pick_rollback_target(ledger[2:], ["api"], "last_good")


def test_a_named_rollback_takes_the_newest_good_release_of_that_version():
    ledger = [release("1.0.0", "a"), release("1.1.0", "b"), release("1.0.0", "a2"), release("1.2.0", "c")]
    assert _release.pick_rollback_target(ledger, ["api"], "1.0.0")["images"]["api"]["id"] == "sha256:a2"


def test_a_failed_release_is_never_a_rollback_target():
    ledger = [release("1.0.0", "a"), release("1.2.0", "c", result="rolled_back")]
    with pytest.raises(_compose.ComposeError, match="not a good release.*good releases: 1.0.0"):
        _release.pick_rollback_target(ledger, ["api"], "1.2.0")
    with pytest.raises(_compose.ComposeError, match="no good release of api before 1.0.0"):
        _release.pick_rollback_target(ledger, ["api"], "previous")


def test_a_release_must_cover_every_service_rolled_back():
    ledger = [release("1.0.0", "a", services=("api",)), release("1.1.0", "b", services=("api", "worker"))]
    with pytest.raises(_compose.ComposeError, match="no good release of api, worker before 1.1.0"):
        _release.pick_rollback_target(ledger, ["api", "worker"], "previous")


def test_a_line_cut_by_a_crash_does_not_hide_the_others(tmp_path):
    path = tmp_path / "releases.jsonl"
    path.write_text('{"version": "1.0.0", "result": "succeeded"}\n{"version": "1.1\n{"version": "1.2.0"}\n')
    assert [e["version"] for e in _release.load_ledger(str(path))] == ["1.0.0", "1.2.0"]


def test_a_variable_set_twice_in_the_env_file_is_changed_on_both_lines():
    lines = ["A=1", "SECRET=old", "B=2", "SECRET=older"]
    assert _compose.env_file_text(lines, {"SECRET": "new"}) == "A=1\nSECRET=new\nB=2\nSECRET=new\n"


def test_the_images_kept_are_those_of_the_newest_good_releases_by_version():
    ledger = [release("1.0.0", "a"), release("1.1.0", "b"), release("1.2.0", "c", result="rolled_back"),
              release("1.1.0", "b2"), release("1.3.0", "d")]
    assert _release.kept_image_ids(ledger, 2) == {"sha256:d", "sha256:b2", "sha256:b"}
    assert _release.kept_image_ids(ledger, 1) == {"sha256:d"}
