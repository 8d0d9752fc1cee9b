# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # A docker compose project on the managed host, driven with `docker compose` (v2) or `docker-compose` (v1).
    DOCUMENTATION = r"""
options:
  project_src:
    description: The folder of the compose project (where C(docker compose up) is run).
    type: path
    required: true
  files:
    description:
      - The compose files, relative to O(project_src) or absolute, in order (C(-f) of compose).
      - Default the first of C(compose.yaml), C(compose.yml), C(docker-compose.yml), C(docker-compose.yaml) found.
    type: list
    elements: path
  project_name:
    description: The compose project name (C(-p)); default the folder's name, as compose itself does.
    type: str
  env_file:
    description: The project's env file; default C(.env) in O(project_src).
    type: path
requirements:
  - docker compose (v2) or docker-compose (v1) on the managed host.
  - The Python docker SDK (C(docker)) and PyYAML.
"""
