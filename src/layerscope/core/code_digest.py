"""The library code a workflow script runs, found by following its imports.

Each rule passes a digest of this code as a param, so editing any module the script
reaches reruns the rule. A hand-kept list of modules per rule goes stale as soon as a
module gains an import; following the imports cannot.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
from pathlib import Path

PACKAGE = "layerscope"


def _imported_names(path: Path, module: str | None) -> frozenset[str]:
    """Dotted names of every ``layerscope`` module or attribute ``path`` imports, at any depth.

    Imports inside functions count: the workflow scripts import lazily. Each file is
    parsed once per version (its modification time and size): the Snakefile digests
    every rule's script, and they share most of the library.
    """
    status = path.stat()
    return _parsed_names(str(path), module, status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=1024)
def _parsed_names(file: str, module: str | None, mtime_ns: int, size: int) -> frozenset[str]:
    """``_imported_names`` of one version of ``file`` (the last two arguments key the cache)."""
    path = Path(file)
    tree = ast.parse(path.read_bytes(), filename=file)
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and module:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(name for name in names if name == PACKAGE or name.startswith(f"{PACKAGE}."))


def _module_files(library: Path, name: str) -> list[tuple[Path, str]]:
    """The files Python executes to import ``name``.

    Each enclosing package's ``__init__.py``, then the module itself; a name that is an
    attribute (a function imported from a module) resolves to nothing beyond its packages.
    """
    parts = name.split(".")[1:]
    found = []
    for depth in range(len(parts) + 1):
        dotted = ".".join([PACKAGE, *parts[:depth]])
        path = library.joinpath(*parts[:depth])
        if (path / "__init__.py").is_file():
            found.append((path / "__init__.py", dotted))
        elif depth and path.with_suffix(".py").is_file():
            found.append((path.with_suffix(".py"), dotted))
    return found


def library_files(script: str | os.PathLike, library: str | os.PathLike) -> list[Path]:
    """Every file of the ``layerscope`` package at ``library`` that ``script`` imports, sorted.

    Imports reached through other library modules count too.

    Args:
        script: a workflow script (or any Python file).
        library: the package folder, ``src/layerscope``.

    Returns:
        The library's ``.py`` files the script reaches, as paths under ``library``.
    """
    library = Path(library)
    pending = [(Path(script), None)]
    seen: set[Path] = set()
    while pending:
        path, module = pending.pop()
        for name in _imported_names(path, module):
            for file, dotted in _module_files(library, name):
                if file not in seen:
                    seen.add(file)
                    pending.append((file, dotted))
    return sorted(seen)


def code_digest(script: str | os.PathLike, library: str | os.PathLike) -> str:
    """A 16-hex-digit digest of ``script`` and the library code it imports.

    Args:
        script: the rule's script.
        library: the package folder, ``src/layerscope``.

    Returns:
        A digest that changes when the script or any library file it reaches changes,
        or when a module joins or leaves that set.
    """
    library = Path(library)
    digest = hashlib.sha256(Path(script).read_bytes())
    for file in library_files(script, library):
        digest.update(file.relative_to(library).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
