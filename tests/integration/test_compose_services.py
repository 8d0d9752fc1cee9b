"""compose_services against a real compose project (the sandbox's stack under its own name): stop, start and
restart act on the services not so already and say which; a one-off command returns its exit code and output,
with its variables in no command line; the compose CLI talks to the engine docker_host names."""

import json

import pytest

from conftest import answers, run_module, running_stack, wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("services")) as stack:
        yield stack


def services(stack, **args):
    return run_module("compose_services", dict(dict(project_src=stack.dir, project_name=stack.name), **args))


def test_stop_and_start_change_only_what_is_not_so_already(stack):
    first = services(stack, services=["api"], state="stopped")
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] and first["changed_services"] == ["api"] and "stop" in first["cmd"]
    assert stack.api_containers() == []
    again = services(stack, services=["api"], state="stopped")
    assert not again["changed"] and again["changed_services"] == []
    planned = run_module("compose_services", dict(project_src=stack.dir, project_name=stack.name, services=["api"],
                                                  state="started"), check_mode=True)
    assert planned["changed"] and planned["changed_services"] == ["api"] and stack.api_containers() == []
    started = services(stack, services=["api", "postgres"], state="started")
    assert started["changed"] and started["changed_services"] == ["api"]  # postgres was running
    wait_for(lambda: answers(stack) == "1.0.0", timeout=60, interval=0.5)
    before = stack.api_containers()
    restarted = services(stack, services=["api"], state="restarted")
    assert restarted["changed"] and restarted["changed_services"] == ["api"] and stack.api_containers() == before
    wait_for(lambda: answers(stack) == "1.0.0", timeout=60, interval=0.5)


def test_present_creates_only_the_missing_container_and_not_its_dependencies(stack):
    removed = stack.compose("rm", "-s", "-f", "proxy")
    assert removed.returncode == 0, removed.stderr
    api_before = stack.api_containers()
    planned = run_module("compose_services", dict(project_src=stack.dir, project_name=stack.name, services=["proxy"],
                                                  state="present"), check_mode=True)
    assert planned["changed"] and planned["changed_services"] == ["proxy"] and answers(stack) is None
    created = services(stack, services=["proxy", "postgres"], state="present")
    assert not created.get("failed"), created.get("msg")
    assert created["changed_services"] == ["proxy"] and "--no-deps" in created["cmd"]
    wait_for(lambda: answers(stack) == "1.0.0", timeout=60, interval=0.5)
    assert stack.api_containers() == api_before  # its dependency was neither recreated nor restarted
    again = services(stack, services=["proxy"], state="present")
    assert not again["changed"] and again["changed_services"] == []


def test_a_one_off_command_returns_its_exit_code_and_output_and_keeps_values_out_of_argv(stack):
    # the value arrives (its length is printed) and is in no command line nor anywhere in the result (no_log)
    ok = services(stack, run=dict(service="api", command=["sh", "-c", "echo \"${#GREETING} $APP_VERSION\""],
                                  environment=dict(GREETING="the-greeting-value")), variables=dict(APP_VERSION="1.1.0"))
    assert not ok.get("failed"), ok.get("msg")
    # the image of release 1.1.0 (compose interpolated the variable) says its version in APP_VERSION
    assert ok["rc"] == 0 and ok["stdout_lines"][-1] == "18 1.1.0"
    assert "the-greeting-value" not in json.dumps(ok) and "GREETING" in ok["cmd"]
    failed = services(stack, run=dict(service="api", command=["sh", "-c", "echo pending; exit 3"]))
    assert failed["failed"] and failed["rc"] == 3 and "pending" in failed["stdout"]
    assert "exited with 3" in failed["msg"]


def test_unknown_services_and_empty_lists_fail_before_anything(stack):
    unknown = services(stack, services=["api", "wrker"], state="stopped")
    assert unknown["failed"] and "unknown service wrker" in unknown["msg"] and "nothing was done" in unknown["msg"]
    assert len(stack.api_containers()) == 1
    empty = services(stack, services=[], state="stopped")
    assert empty["failed"] and "services is empty" in empty["msg"]


def test_the_compose_cli_talks_to_the_engine_docker_host_names(stack, monkeypatch):
    # a DOCKER_HOST in the environment that answers nothing: only docker_host reaches the engine
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    result = services(stack, services=["api"], state="restarted", docker_host="unix:///var/run/docker.sock")
    assert not result.get("failed"), result.get("msg")
    wait_for(lambda: answers(stack) == "1.0.0", timeout=60, interval=0.5)
