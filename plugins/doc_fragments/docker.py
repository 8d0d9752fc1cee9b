# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Running the PostgreSQL clients inside a container, as the runbooks' `docker compose exec -T postgres`.
    DOCUMENTATION = r"""
options:
  container:
    description:
      - Name or id of a running container in which to run the PostgreSQL client programs, through the docker
        API (the runbooks' C(docker compose exec -T postgres pg_dump ...)), streaming their input and output.
      - The connection options then apply inside the container; with no O(login_host) the clients use the
        container's Unix socket.
    type: str
  container_user:
    description: User to run the client programs as inside O(container) (C(docker exec --user)).
    type: str
  docker_host:
    description:
      - The docker daemon to talk to, such as C(unix:///var/run/docker.sock) or C(tcp://127.0.0.1:2375).
      - Default is E(DOCKER_HOST), else the local socket.
    type: str
requirements:
  - The Python docker SDK (C(docker)) when O(container) is set.
"""
