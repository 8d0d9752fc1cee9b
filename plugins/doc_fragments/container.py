# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Running the PostgreSQL clients inside a container, as the runbooks' `docker compose exec -T postgres`
    # (spec: _docker.container_argument_spec; docker_host comes with the docker fragment).
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
requirements:
  - The Python docker SDK (C(docker)) when O(container) is set.
"""
