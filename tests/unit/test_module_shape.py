"""Every module is an adapter with one way to fail: its main catches RunbookError once (or nothing), no
except in a module catches a tuple of types, and volume_backup's and secret_rotate's mains stay short."""

import ast
import os

import pytest

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules")
NAMES = sorted(f[:-3] for f in os.listdir(MODULES) if f.endswith(".py") and not f.startswith("_"))


def parse(name):
    with open(os.path.join(MODULES, name + ".py")) as fh:
        return ast.parse(fh.read())


def main_of(tree):
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")


@pytest.mark.parametrize("name", NAMES)
def test_main_catches_only_runbook_error_once(name):
    handlers = [n for n in ast.walk(main_of(parse(name))) if isinstance(n, ast.ExceptHandler)]
    assert len(handlers) <= 1, "%s.main has %d except clauses" % (name, len(handlers))
    for handler in handlers:
        assert isinstance(handler.type, ast.Name) and handler.type.id == "RunbookError", \
            "%s.main catches %s, not RunbookError" % (name, ast.unparse(handler.type) if handler.type else "all")


@pytest.mark.parametrize("name", NAMES)
def test_no_except_catches_several_types(name):
    for node in ast.walk(parse(name)):
        if isinstance(node, ast.ExceptHandler):
            assert not isinstance(node.type, ast.Tuple), "%s line %d catches %s" % (
                name, node.lineno, ast.unparse(node.type))


@pytest.mark.parametrize("name", ["volume_backup", "secret_rotate"])
def test_main_is_short(name):
    main = main_of(parse(name))
    assert main.end_lineno - main.lineno + 1 <= 30
