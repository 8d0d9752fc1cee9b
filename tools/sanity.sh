#!/usr/bin/env bash
# ansible-test sanity with no ignore files. ansible-test wants the collection at
# .../ansible_collections/stackops/runbook, so it runs on a copy of the files git knows about.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/.build/sanity/ansible_collections/stackops/runbook
rm -rf "$ROOT/.build/sanity"
mkdir -p "$WORK"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | xargs -0 cp --parents -t "$WORK"
cd "$WORK"
# a git repository of its own, so ansible-test sees exactly these files
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm sanity
exec "$ROOT/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
