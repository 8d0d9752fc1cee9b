#!/usr/bin/env bash
# `docker compose` (v2 plugin) where the host has it, else `docker-compose` (v1, Debian 12's package).
if docker compose version >/dev/null 2>&1; then
    exec docker compose "$@"
elif command -v docker-compose >/dev/null; then
    exec docker-compose "$@"
fi
echo "neither 'docker compose' nor 'docker-compose' is installed" >&2
exit 1
