"""docker_prune on the real engine, limited to objects this test labels: stopped containers and unused images go,
the images of the last good releases in a release ledger, images in use and named volumes stay."""

import json
import subprocess
import uuid

import pytest

from conftest import postgres_image, run_module


def docker(*args):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, check=True).stdout.strip()


def exists(kind, name):
    return subprocess.run(["docker", kind, "inspect", name], capture_output=True, check=False).returncode == 0


@pytest.fixture
def labelled(tmp_path):
    label = "io.stackops.test=prune-" + uuid.uuid4().hex[:8]
    images = {}
    for name in ("release", "unused", "stopped", "running"):
        context = tmp_path / name
        context.mkdir()
        (context / "Dockerfile").write_text("FROM %s\nLABEL %s\nENV PRUNE_TEST=%s-%s\n" % (
            postgres_image(), label, name, label))
        tag = "stackops-test/prune-%s:%s" % (name, label.rsplit("-", 1)[1])
        docker("build", "-q", "-t", tag, str(context))
        images[name] = dict(tag=tag, id=docker("image", "inspect", "-f", "{{.Id}}", tag))
    volume = "stackops-test-prune-" + label.rsplit("-", 1)[1]
    stopped = docker("create", "--label", label, "-v", volume + ":/data", images["stopped"]["tag"], "true")
    running = docker("run", "-d", "--label", label, images["running"]["tag"], "sleep", "600")
    ledger = tmp_path / "releases.jsonl"
    ledger.write_text(json.dumps(dict(action="deploy", result="succeeded", version="1.0.0", services=["api"],
                                      images={"api": dict(ref=images["release"]["tag"], id=images["release"]["id"])}))
                      + "\n")
    yield dict(label=label, images=images, stopped=stopped, running=running, volume=volume, ledger=str(ledger))
    subprocess.run(["docker", "rm", "-f", stopped, running], capture_output=True, check=False)
    subprocess.run(["docker", "rmi", "-f"] + [i["tag"] for i in images.values()], capture_output=True, check=False)
    subprocess.run(["docker", "volume", "rm", volume], capture_output=True, check=False)


def test_check_mode_lists_what_would_go_and_removes_nothing(labelled):
    result = run_module("docker_prune", dict(older_than="0s", labels=[labelled["label"]],
                                             release_ledgers=[labelled["ledger"]]), check_mode=True)
    assert result["changed"] is True
    assert [c["id"] for c in result["containers"]] == [labelled["stopped"]]
    assert sorted(i["id"] for i in result["images"]) == sorted(
        labelled["images"][n]["id"] for n in ("unused", "stopped"))
    assert exists("container", labelled["stopped"]) and exists("image", labelled["images"]["unused"]["tag"])


def test_prune_keeps_release_images_images_in_use_and_named_volumes(labelled):
    result = run_module("docker_prune", dict(older_than="0s", labels=[labelled["label"]],
                                             release_ledgers=[labelled["ledger"]]))
    assert result["changed"] is True, result
    assert result["kept_release_images"] == [labelled["images"]["release"]["id"]]
    assert not exists("container", labelled["stopped"])
    assert not exists("image", labelled["images"]["unused"]["tag"])
    assert not exists("image", labelled["images"]["stopped"]["tag"])
    assert exists("image", labelled["images"]["release"]["tag"])
    assert exists("image", labelled["images"]["running"]["tag"]) and exists("container", labelled["running"])
    assert exists("volume", labelled["volume"])
    again = run_module("docker_prune", dict(older_than="0s", labels=[labelled["label"]],
                                            release_ledgers=[labelled["ledger"]]))
    assert again["changed"] is False


def test_nothing_younger_than_the_limit_goes(labelled):
    result = run_module("docker_prune", dict(older_than="1d", labels=[labelled["label"]],
                                             release_ledgers=[labelled["ledger"]]))
    assert result["changed"] is False and result["containers"] == [] and result["images"] == []
    assert exists("container", labelled["stopped"])


def test_a_bad_limit_is_refused():
    result = run_module("docker_prune", dict(older_than="a week"))
    assert result["failed"] and "older_than" in result["msg"] and "26h" in result["msg"]


def test_objects_removed_while_the_engine_lists_them_do_not_fail_the_run(labelled):
    """On a busy engine (a deploy recreating services, another job's cleanup) a container or an image can go between
    the engine's listing and its inspection: prune goes on with the rest. Made certain here, on the real engine: a
    labelled bystander container and image are removed right after the listing that holds them."""
    import docker as docker_sdk

    from ansible_collections.stackops.runbook.plugins.modules import docker_prune

    bystander = docker("create", "--label", labelled["label"], postgres_image(), "true")
    bystander_tag = labelled["images"]["unused"]["tag"].replace("prune-unused", "prune-bystander")
    subprocess.run(["docker", "build", "-q", "-t", bystander_tag, "-"], capture_output=True, check=True, text=True,
                   input="FROM %s\nENV PRUNE_TEST=bystander\n" % labelled["images"]["unused"]["tag"])
    client = docker_sdk.from_env()
    listings = dict(containers=client.api.containers, images=client.api.images)

    def listed_then_removed(kind, rm_argv):
        def listing(*args, **kwargs):
            listed = listings[kind](*args, **kwargs)
            subprocess.run(["docker"] + rm_argv, capture_output=True, check=False)
            return listed
        return listing

    client.api.containers = listed_then_removed("containers", ["rm", "-f", bystander])
    client.api.images = listed_then_removed("images", ["rmi", "-f", bystander_tag])
    params = dict(labels=[labelled["label"]], release_ledgers=[labelled["ledger"]], keep_releases=3,
                  containers=True, images=True)
    result = dict(containers=[], images=[], kept_release_images=[], reclaimed_bytes=0)
    try:
        docker_prune.prune(client, params, False, 0, result)
    finally:
        subprocess.run(["docker", "rm", "-f", bystander], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", bystander_tag], capture_output=True, check=False)
    assert [c["id"] for c in result["containers"]] == [labelled["stopped"]]
    assert sorted(i["id"] for i in result["images"]) == sorted(
        labelled["images"][n]["id"] for n in ("unused", "stopped"))
    assert not exists("container", labelled["stopped"]) and not exists("image", labelled["images"]["unused"]["tag"])
