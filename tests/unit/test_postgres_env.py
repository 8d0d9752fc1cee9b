"""The libpq environment: options become variables, the password a private passfile, never argv."""

import os
import stat

from ansible_collections.stackops.runbook.plugins.module_utils._postgres import libpq_env


def params(**overrides):
    base = dict(login_host=None, login_port=5432, login_user="postgres", login_password=None,
                login_unix_socket=None, ssl_mode="prefer", ca_cert=None, container=None)
    base.update(overrides)
    return base


def test_connection_options_become_libpq_variables(tmp_path):
    env = libpq_env(params(login_host="db.internal", login_port=6432, login_user="backup", ssl_mode="verify-full",
                           ca_cert="/etc/ssl/ca.pem"), str(tmp_path))
    assert env["PGHOST"] == "db.internal" and env["PGPORT"] == "6432" and env["PGUSER"] == "backup"
    assert env["PGSSLMODE"] == "verify-full" and env["PGSSLROOTCERT"] == "/etc/ssl/ca.pem"
    assert "PGPASSWORD" not in env and "PGPASSFILE" not in env


def test_the_unix_socket_directory_is_the_host_when_no_host_is_given(tmp_path):
    assert libpq_env(params(login_unix_socket="/run/pg"), str(tmp_path))["PGHOST"] == "/run/pg"


def test_on_the_host_the_password_goes_to_a_0600_passfile_with_escaping(tmp_path):
    env = libpq_env(params(login_password="p:a\\ss"), str(tmp_path))
    assert "PGPASSWORD" not in env
    path = env["PGPASSFILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as fh:
        assert fh.read() == "*:*:*:*:p\\:a\\\\ss\n"


def test_in_a_container_the_password_goes_to_the_exec_environment(tmp_path):
    env = libpq_env(params(login_password="secret", container="db"), str(tmp_path))
    assert env["PGPASSWORD"] == "secret" and "PGPASSFILE" not in env
    assert os.listdir(tmp_path) == []
