"""No library function longer than a reader can hold: an AST scan of src/layerscope."""

import ast

from helpers import REPO

LONGEST = 120  # lines, docstring included


def function_lengths() -> dict[str, int]:
    """Every function and method of the library by ``path:line name``, with its length in lines."""
    library = REPO / "src" / "layerscope"
    lengths = {}
    for path in sorted(library.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lengths[f"{path.relative_to(library)}:{node.lineno} {node.name}"] = node.end_lineno - node.lineno + 1
    return lengths


def test_no_library_function_is_over_120_lines():
    lengths = function_lengths()
    assert len(lengths) > 500  # the scan reached the library
    assert lengths[next(name for name in lengths if name.endswith(" train_run"))] <= 80
    assert {name: n for name, n in lengths.items() if n > LONGEST} == {}
