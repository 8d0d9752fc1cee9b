"""Every error the collection raises on purpose has one base, so a module can catch them in one place."""

import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_no_error_class_derives_from_exception_but_the_base():
    direct = []
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(path) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "Exception" for b in node.bases):
                direct.append("%s:%s" % (os.path.relpath(path, ROOT), node.name))
    assert direct == ["plugins/module_utils/_errors.py:RunbookError"]
