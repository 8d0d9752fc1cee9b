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
# ansible-test bootstraps pip in each test's virtualenv with a script it downloads from a host outside
# the package registries; where that host is out of reach, an equivalent made from ensurepip serves
SANITY_VENV=$ROOT/.build/sanity-venv
if [ ! -x "$SANITY_VENV/bin/ansible-test" ]; then
    python3 -m venv "$SANITY_VENV"
    "$SANITY_VENV/bin/pip" install -q "$(grep '^ansible-core' requirements-dev.txt)"
fi
pip_version=$("$SANITY_VENV/bin/python" - <<'PY'
import os, re
import ansible_test
source = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
match = re.search(r"pip='([0-9.]+)'", source)
print(match.group(1) if match else "")
PY
)
cache=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ -n "$pip_version" ] && [ ! -s "$cache" ] && ! curl -fsS -m 10 -o /dev/null https://ci-files.testing.ansible.com/ 2>/dev/null; then
    mkdir -p "$(dirname "$cache")"
    cp tools/ansible-test-get-pip.py "$cache"
fi
cd "$WORK"
# a git repository of its own, so ansible-test sees exactly these files
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm sanity
exec "$SANITY_VENV/bin/ansible-test" sanity --requirements --python 3.11 --color no "$@"
