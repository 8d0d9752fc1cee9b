"""compose_release against a real compose project: the sandbox's stack (postgres, the API as versioned images,
the reverse proxy) started under its own name and ports, and the API images tools/build-images.sh builds - a
good 1.1.0 and 1.5.0, 1.2.0-never-healthy, 1.3.0-unhealthy-later (503 four seconds after it starts)."""

import fcntl
import subprocess
import threading
import time

import pytest

from conftest import run_module, running_stack

API_IMAGE = "stackops-sandbox/api"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("deploy")) as stack:
        yield stack


def release(stack, version=None, **args):
    base = dict(project_src=stack.dir, project_name=stack.name, ledger_path=stack.ledger, services=["api"],
                version=version, health_interval=0.5, health_timeout=40, monitor=5, stop_timeout=5,
                keep_releases=50,  # the API images are shared with other tests: only the prune test prunes
                version_url=stack.url + "/api/version",
                health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")])
    base.update(args)
    return base


class RequestLoop:
    """Users of the app: GET /api/version through the proxy in a loop, counting failures (errors, 5xx, or
    no answer in 5 s) and the versions that answered."""

    def __init__(self, stack):
        self.stack, self.failed, self.ok, self.versions, self.slowest = stack, [], 0, {}, 0.0
        self.running = True
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while self.running:
            started = time.monotonic()
            try:
                version = self.stack.version()
                self.ok += 1
                self.versions[version] = self.versions.get(version, 0) + 1
            except Exception as exc:  # pylint: disable=broad-except
                self.failed.append(repr(exc))
            self.slowest = max(self.slowest, time.monotonic() - started)
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def report(capsys, line):
    with capsys.disabled():
        print("\n[deploy] " + line)


def test_a_start_first_deploy_behind_the_proxy_fails_no_request(stack, capsys):
    with RequestLoop(stack) as users:
        result = run_module("compose_release", release(stack, "1.1.0", strategy="start-first"))
    assert result.get("failed") is not True, result["msg"]
    assert result["changed"] and result["version"] == "1.1.0" and stack.version() == "1.1.0"
    assert users.ok > 100 and users.failed == [], users.failed[:5]
    report(capsys, "start-first 1.0.0 -> 1.1.0: %d requests, %d failed, slowest %.2fs" % (
        users.ok + len(users.failed), len(users.failed), users.slowest))
    assert stack.env_version() == "1.1.0"
    adopted, deployed = stack.ledger_entries()[-2:]
    assert (adopted["action"], adopted["version"], adopted["result"]) == ("adopt", "1.0.0", "succeeded")
    assert (deployed["action"], deployed["version"], deployed["result"]) == ("deploy", "1.1.0", "succeeded")
    assert deployed["images"]["api"]["id"].startswith("sha256:") and deployed["previous_version"] == "1.0.0"
    assert deployed["compose_sha256"] and deployed["actor"] and "healthy" in deployed["health"]


def test_a_recreate_deploy_is_measured_too(stack, capsys):
    with RequestLoop(stack) as users:
        result = run_module("compose_release", release(stack, "1.5.0", strategy="recreate"))
    assert result.get("failed") is not True, result["msg"]
    assert stack.version() == "1.5.0"
    # the proxy retries refused connections for 5 s, so the switch shows as slow requests rather than errors
    report(capsys, "recreate 1.1.0 -> 1.5.0: %d requests, %d failed, slowest %.2fs" % (
        users.ok + len(users.failed), len(users.failed), users.slowest))
    assert users.ok > 50


def test_deploying_the_version_that_runs_changes_nothing(stack):
    before = stack.api_containers()
    result = run_module("compose_release", release(stack, "1.5.0"))
    assert result["changed"] is False and "already runs 1.5.0" in result["msg"]
    assert stack.api_containers() == before


def test_check_mode_shows_the_plan_and_changes_nothing(stack):
    before, lines = stack.api_containers(), len(stack.ledger_entries())
    result = run_module("compose_release", release(stack, "1.1.0", strategy="start-first"), check_mode=True)
    assert result["changed"] is True
    assert result["plan"]["from_version"] == "1.5.0" and result["plan"]["to_version"] == "1.1.0"
    assert result["plan"]["images"]["api"]["ref"] == API_IMAGE + ":1.1.0"
    assert stack.api_containers() == before and stack.version() == "1.5.0"
    assert len(stack.ledger_entries()) == lines and stack.env_version() == "1.5.0"


def test_a_release_that_never_becomes_healthy_is_rolled_back(stack):
    with RequestLoop(stack) as users:
        result = run_module("compose_release", release(stack, "1.2.0-never-healthy", strategy="start-first",
                                                       health_timeout=15))
    assert result["failed"] and result.get("rolled_back") is True, result["msg"]
    assert result["serving_version"] == "1.5.0"
    assert "Rolled back: 1.5.0 serves again" in result["msg"]
    assert stack.version() == "1.5.0" and stack.env_version() == "1.5.0"
    assert users.failed == []
    entry = stack.ledger_entries()[-1]
    assert (entry["version"], entry["result"]) == ("1.2.0-never-healthy", "rolled_back")
    assert entry["rollback"]["serving"] is True
    assert "unhealthy" in entry["message"]


def test_a_release_that_turns_unhealthy_after_it_started_is_rolled_back(stack):
    result = run_module("compose_release", release(stack, "1.3.0-unhealthy-later", strategy="recreate",
                                                   monitor=10))
    assert result["failed"] and result["rolled_back"] is True
    assert "monitor window" in result["msg"]
    assert stack.version() == "1.5.0"
    entry = stack.ledger_entries()[-1]
    assert (entry["version"], entry["result"]) == ("1.3.0-unhealthy-later", "rolled_back")


def test_a_manual_rollback_to_a_named_version_works(stack):
    result = run_module("compose_release", release(stack, state="rolled_back", to="1.1.0", version=None,
                                                   services=None))
    assert result.get("failed") is not True, result["msg"]
    assert result["changed"] and result["version"] == "1.1.0"
    assert stack.version() == "1.1.0" and stack.env_version() == "1.1.0"
    entry = stack.ledger_entries()[-1]
    assert (entry["action"], entry["version"], entry["result"]) == ("rollback", "1.1.0", "succeeded")
    again = run_module("compose_release", release(stack, state="rolled_back", to="1.1.0", version=None))
    assert again["changed"] is False


def test_rolling_back_to_a_release_whose_image_is_gone_fails_before_touching_anything(stack, tmp_path):
    throwaway_release(tmp_path, "0.9.0-gone")
    assert run_module("compose_release", release(stack, "0.9.0-gone")).get("failed") is not True
    assert run_module("compose_release", release(stack, "1.1.0")).get("failed") is not True
    subprocess.run(["docker", "rmi", API_IMAGE + ":0.9.0-gone"], check=True, capture_output=True)
    before, lines = stack.api_containers(), len(stack.ledger_entries())
    result = run_module("compose_release", release(stack, state="rolled_back", to="0.9.0-gone", version=None))
    assert result["failed"] and result["changed"] is False
    assert "no longer on this host" in result["msg"] and "Nothing was changed" in result["msg"]
    assert stack.api_containers() == before and stack.version() == "1.1.0"
    assert len(stack.ledger_entries()) == lines


def throwaway_release(tmp_path, version):
    """An API image of its own (a copy of 1.5.0 saying ``version``), so deleting it touches no shared image."""
    context = tmp_path / version
    context.mkdir()
    (context / "Dockerfile").write_text("FROM %s:1.5.0\nENV APP_VERSION=%s\n" % (API_IMAGE, version))
    subprocess.run(["docker", "build", "-q", "-t", API_IMAGE + ":" + version, str(context)], check=True,
                   capture_output=True)
    return API_IMAGE + ":" + version


def image_exists(reference):
    return subprocess.run(["docker", "image", "inspect", reference], capture_output=True, check=False).returncode == 0


def test_images_of_good_releases_beyond_keep_releases_are_removed(stack, tmp_path):
    ledger = str(tmp_path / "prune-ledger.jsonl")
    running = stack.version()
    oldest, middle, newest = (throwaway_release(tmp_path, v) for v in ("0.7.1-prune", "0.7.2-prune", "0.7.3-prune"))
    for version in ("0.7.1-prune", "0.7.2-prune"):
        assert run_module("compose_release", release(stack, version, ledger_path=ledger)).get("failed") is not True
    result = run_module("compose_release", release(stack, "0.7.3-prune", ledger_path=ledger, keep_releases=2))
    assert result.get("failed") is not True, result["msg"]
    assert result["pruned_images"] == [oldest] and not image_exists(oldest)
    assert image_exists(middle) and image_exists(newest)
    # the release that ran before this ledger's first deploy was adopted, not deployed by it: never pruned
    assert image_exists(API_IMAGE + ":" + running)
    assert run_module("compose_release", release(stack, running, ledger_path=ledger)).get("failed") is not True
    subprocess.run(["docker", "rmi", middle, newest], capture_output=True, check=False)


def test_a_second_deploy_of_the_same_project_waits_for_the_lock(stack):
    serving = stack.version()
    with open(stack.ledger + ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = run_module("compose_release", release(stack, "1.5.0" if serving != "1.5.0" else "1.1.0"))
    assert result["failed"] and "another deploy of this project" in result["msg"]
    assert stack.version() == serving


@pytest.mark.parametrize("args, message", [
    (dict(services=["apii"]), "unknown service apii"),
    (dict(version="1.1.0; rm -rf /"), "is not a release version"),
    (dict(version="$(id)"), "is not a release version"),
    (dict(files=["missing-compose.yml"]), "not found"),
    (dict(version="7.7.7", pull="never"), "no image for api"),
])
def test_bad_input_fails_clearly_and_changes_nothing(stack, args, message):
    before, lines, version = stack.api_containers(), len(stack.ledger_entries()), stack.env_version()
    args = dict(dict(version="1.5.0"), **args)
    result = run_module("compose_release", release(stack, **args))
    assert result["failed"] and message in result["msg"], result["msg"]
    assert stack.api_containers() == before and len(stack.ledger_entries()) == lines
    assert stack.env_version() == version
