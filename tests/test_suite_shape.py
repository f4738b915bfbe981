"""The test suite's own promises, read from its source (no test runs here).

- Every test function asserts something: an ``assert``, a ``pytest.raises``/``warns`` block,
  a ``*.testing.assert_*`` call, or a call to a helper that does (named ``assert_*``, or a
  function of the same module or of ``tests/helpers`` whose body asserts).
- Test modules import no other test module (shared code lives in ``tests/helpers``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
MODULES = sorted(TESTS.glob("test_*.py"))
HELPERS = sorted((TESTS / "helpers").glob("*.py"))


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def asserts_directly(node: ast.AST, asserting: set[str]) -> bool:
    """Does ``node``'s body assert, by itself or through a call of a function in ``asserting``?"""
    for child in ast.walk(node):
        if isinstance(child, ast.Assert):
            return True
        if isinstance(child, ast.With) and any(
            isinstance(item.context_expr, ast.Call) and called_name(item.context_expr) in ("raises", "warns")
            for item in child.items
        ):
            return True
        if isinstance(child, ast.Call):
            name = called_name(child)
            if name.startswith("assert") or name in asserting:
                return True
    return False


def functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]


def asserting_functions(trees: list[ast.AST]) -> set[str]:
    """Names of the functions that assert, directly or through one another (to a fixed point)."""
    defined = [f for tree in trees for f in functions(tree)]
    asserting: set[str] = set()
    while True:
        found = {f.name for f in defined if asserts_directly(f, asserting)}
        if found <= asserting:
            return asserting
        asserting |= found


HELPER_TREES = [ast.parse(path.read_text()) for path in HELPERS]


def unasserted_tests(source: str) -> list[str]:
    tree = ast.parse(source)
    asserting = asserting_functions([tree, *HELPER_TREES])
    tests = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")]
    return [f.name for f in tests if not asserts_directly(f, asserting)]


def test_the_scan_tells_a_test_that_asserts_from_one_that_cannot_fail():
    source = """
def check(x):
    assert x
def helper(x):
    check(x)
def test_direct(): assert 1
def test_raises():
    with pytest.raises(ValueError): int("x")
def test_numpy(): np.testing.assert_allclose(1, 1)
def test_through_helpers(): helper(1)
def test_nothing(): print(1)
def test_only_computes():
    value = helper
"""
    assert unasserted_tests(source) == ["test_nothing", "test_only_computes"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_test_asserts(path):
    assert unasserted_tests(path.read_text()) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_test_module_imports_another(path):
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0].startswith(("test_", "conftest"))}
