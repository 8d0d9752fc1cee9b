"""redis_keys against a real redis-server: an incident's "log everybody out" deletes the session keys and nothing
else, check mode counts and deletes nothing, '*' and an unasked FLUSHALL are refused, the password stays out of
the result."""

import shutil
import subprocess
import uuid

import pytest

from conftest import free_port, run_module, wait_for


@pytest.fixture
def redis():
    port = free_port()
    password = "redis-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", password],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = ["redis-cli", "-p", str(port), "-a", password, "--no-auth-warning"]
    wait_for(lambda: subprocess.run(cli + ["ping"], capture_output=True, text=True, check=False).stdout.strip() == "PONG")
    commands = "".join("SET session:%d user%d\n" % (i, i) for i in range(1200)) + "SET cache:home x\nINCR jobs:processed\n"
    subprocess.run(cli, input=commands, text=True, capture_output=True, check=True)
    yield dict(port=port, password=password, cli=cli)
    proc.terminate()
    proc.wait(timeout=10)


def keys(redis, pattern):
    out = subprocess.run(redis["cli"] + ["--scan", "--pattern", pattern], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_sessions_go_and_every_other_key_stays(redis):
    args = dict(port=redis["port"], password=redis["password"], patterns=["session:*"])
    counted = run_module("redis_keys", args, check_mode=True)
    assert counted["changed"] and counted["total"] == 1200 and len(keys(redis, "session:*")) == 1200
    cleared = run_module("redis_keys", args)
    assert not cleared.get("failed"), cleared.get("msg")
    assert cleared["deleted"] == {"session:*": 1200} and keys(redis, "session:*") == []
    assert sorted(keys(redis, "*")) == ["cache:home", "jobs:processed"]
    assert redis["password"] not in str(cleared)
    again = run_module("redis_keys", args)
    assert not again["changed"] and again["total"] == 0


def test_every_key_only_when_asked_by_name(redis):
    refused = run_module("redis_keys", dict(port=redis["port"], password=redis["password"], patterns=["*"]))
    assert refused["failed"] and "flush_all" in refused["msg"] and len(keys(redis, "*")) == 1202
    flushed = run_module("redis_keys", dict(port=redis["port"], password=redis["password"], flush_all=True))
    assert flushed["flushed"] and flushed["total"] == 1202 and keys(redis, "*") == []
    wrong = run_module("redis_keys", dict(port=redis["port"], password="wrong", patterns=["session:*"]))
    assert wrong["failed"] and "WRONGPASS" in wrong["msg"]
