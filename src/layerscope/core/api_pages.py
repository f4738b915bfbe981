"""The docs' API reference pages, one per stage package, generated from the package's modules.

Each page lists every public module of its package as a mkdocstrings directive, so the
Google-style docstrings become the reference, and a module added to a package is covered
once the pages are regenerated; ``tests/test_docs.py`` fails when they are stale.

Usage: ``python -m layerscope.core.api_pages docs/api``
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from layerscope.core.atomic import write_text

LIBRARY = Path(__file__).resolve().parents[1]


def packages() -> list[str]:
    """The stage packages of ``layerscope`` (core, data, ...), in the order their imports point."""
    order = ["core", "data", "weights", "train", "explain", "results"]
    found = {path.name for path in LIBRARY.iterdir() if (path / "__init__.py").is_file()}
    return [name for name in order if name in found] + sorted(found - set(order))


def public_modules(package: str) -> list[str]:
    """The dotted names of a package's public modules (no leading underscore), sorted."""
    return [
        f"layerscope.{package}.{path.stem}"
        for path in sorted((LIBRARY / package).glob("*.py"))
        if not path.stem.startswith("_")
    ]


def api_page(package: str) -> str:
    """A package's reference page: its docstring's first line, then one directive per module."""
    docstring = ast.get_docstring(ast.parse((LIBRARY / package / "__init__.py").read_text())) or ""
    lines = [f"# `layerscope.{package}`", "", docstring.split("\n\n")[0].replace("\n", " ")]
    for module in public_modules(package):
        lines += ["", f"::: {module}"]
    return "\n".join(lines).rstrip() + "\n"


def write_pages(folder: str | Path) -> list[Path]:
    """Write every package's page into ``folder`` as ``<package>.md``; returns the paths."""
    paths = [Path(folder) / f"{package}.md" for package in packages()]
    for path in paths:
        write_text(path, api_page(path.stem))
    return paths


if __name__ == "__main__":
    write_pages(sys.argv[1])
