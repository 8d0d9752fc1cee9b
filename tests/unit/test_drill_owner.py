"""A drill's leftovers are removed once their owner is certainly gone, and never while it may still run."""

import os
import socket

from ansible_collections.stackops.runbook.plugins.module_utils import _drill


def token(**parts):
    host, boot, namespace, pid, started = _drill.owner_token().split("/")
    values = dict(host=host, boot=boot, namespace=namespace, pid=pid, started=started)
    values.update({k: str(v) for k, v in parts.items()})
    return "%(host)s/%(boot)s/%(namespace)s/%(pid)s/%(started)s" % values


def test_a_running_owner_is_not_gone():
    assert _drill.owner_gone(_drill.owner_token()) is False


def test_a_dead_or_reused_pid_of_this_host_is_gone():
    assert _drill.owner_gone(token(pid=2 ** 22 + 17)) is True  # above pid_max: no such process
    assert _drill.owner_gone(token(started="1")) is True  # the pid now belongs to another process


def test_another_boot_is_gone():
    assert _drill.owner_gone(token(boot="another-boot")) is True


def test_another_host_or_pid_namespace_cannot_be_told_from_here():
    assert _drill.owner_gone(token(host=socket.gethostname() + "-other", pid=2 ** 22 + 17)) is False
    # a container sharing this host's name and kernel (docker's host network) has pids of its own
    assert _drill.owner_gone(token(namespace="4026530000", pid=2 ** 22 + 17)) is False


def test_a_token_of_an_older_version_is_left_to_the_expiry():
    assert _drill.owner_gone("host/boot/%d/123" % os.getpid()) is False
    assert _drill.owner_gone(None) is False
