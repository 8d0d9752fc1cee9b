# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The docker daemon, for every module that talks to it (spec: _docker.docker_argument_spec).
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The docker daemon to talk to, such as C(unix:///var/run/docker.sock) or C(tcp://127.0.0.1:2375).
      - Default is E(DOCKER_HOST), else the local socket.
    type: str
"""
