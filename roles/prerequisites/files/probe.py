"""Which of the collection's libraries this python has, at which version, and whether that is new enough:
argv[1] is {import name: minimum version}; prints {name: null | {"version": ..., "ok": bool}}."""
import importlib
import json
import re
import sys


def key(version):
    return tuple(int(part) for part in re.findall(r"\d+", str(version))[:3])


found = {}
for name, minimum in json.loads(sys.argv[1]).items():
    try:
        module = importlib.import_module(name)
    except ImportError:
        found[name] = None
        continue
    version = getattr(module, "__version__", "0")
    found[name] = {"version": version, "ok": key(version) >= key(minimum)}
print(json.dumps(found))
