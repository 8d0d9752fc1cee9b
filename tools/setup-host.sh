#!/usr/bin/env bash
# Installs the Debian packages that make demo, make test and CI need, when they are missing.
# Runs as root on Debian 12 (the same list is in bindep.txt for other platforms).
set -euo pipefail
packages=(python3-venv docker.io docker-compose debootstrap postgresql-15 postgresql-client-15 zstd age
          shellcheck procps util-linux redis-server openssh-client prometheus)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages: ${missing[*]}; install them as root (apt-get install -y ${missing[*]})" >&2
        exit 1
    fi
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    # the distribution's cluster is not used: tests start their own throwaway clusters
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql/15/main ]; then
        pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
    fi
fi
