#!/usr/bin/env bash
# Makes sure a docker engine answers: starts dockerd in the background when none does (CI machines
# and fresh hosts have the package but no running daemon and no init system to start it).
set -euo pipefail
if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null; then
    echo "no docker engine: install docker.io (tools/setup-host.sh does)" >&2
    exit 1
fi
echo "starting dockerd in the background (log: /var/log/stackops-dockerd.log)"
nohup dockerd >/var/log/stackops-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
done
echo "dockerd did not come up; see /var/log/stackops-dockerd.log" >&2
tail -20 /var/log/stackops-dockerd.log >&2 || true
exit 1
