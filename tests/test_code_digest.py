"""The code digest follows a script's imports through the library."""

from __future__ import annotations

from pathlib import Path

from helpers import REPO

from layerscope.core.code_digest import code_digest, library_files


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_library(root: Path) -> Path:
    """layerscope/{__init__, util}, stage/{__init__, work, helper, unused}, other/plain."""
    lib = root / "layerscope"
    write(lib / "__init__.py")
    write(lib / "util.py", "import numpy\n")
    write(lib / "stage" / "__init__.py")
    write(lib / "stage" / "work.py", "from . import helper\nfrom layerscope.util import thing\n")
    write(lib / "stage" / "helper.py", "def f():\n    from ..other import plain\n")
    write(lib / "stage" / "unused.py")
    write(lib / "other" / "plain.py")  # a namespace package: no __init__.py
    return lib


def test_library_files_follow_absolute_relative_and_lazy_imports(tmp_path):
    lib = fake_library(tmp_path)
    script = write(tmp_path / "script.py", "def main():\n    from layerscope.stage.work import run\n")
    found = {path.relative_to(lib).as_posix() for path in library_files(script, lib)}
    assert found == {
        "__init__.py",
        "stage/__init__.py",
        "stage/work.py",
        "stage/helper.py",
        "util.py",
        "other/plain.py",
    }


def test_digest_changes_with_an_imported_module_only(tmp_path):
    lib = fake_library(tmp_path)
    script = write(tmp_path / "script.py", "import layerscope.stage.work\n")
    before = code_digest(script, lib)
    write(lib / "stage" / "unused.py", "x = 1\n")
    assert code_digest(script, lib) == before
    write(lib / "other" / "plain.py", "x = 1\n")
    assert code_digest(script, lib) != before


def test_every_workflow_script_reaches_the_package_it_calls():
    library = REPO / "src" / "layerscope"
    reached = {
        script.stem: {path.relative_to(library).as_posix() for path in library_files(script, library)}
        for script in (REPO / "workflow" / "scripts").glob("*.py")
    }
    assert {"train/run.py", "train/plots.py", "weights/recorder.py", "data/prepare.py"} <= reached["train"]
    assert "weights/render3d.py" not in reached["train"]
    assert {"explain/explanations.py", "explain/gradcam.py", "explain/lime_method.py"} <= reached["explain"]
    assert {"results/tables.py", "core/statistics.py"} <= reached["tables"]


def test_no_training_script_reaches_the_bootstrap():
    """Intervals are the results stage's reading of predictions.csv: editing the bootstrap retrains nothing."""
    library = REPO / "src" / "layerscope"
    reaching = {
        script.stem
        for script in (REPO / "workflow" / "scripts").glob("*.py")
        if library / "core" / "bootstrap.py" in library_files(script, library)
    }
    assert reaching == {"tables", "freeze_recommendation", "landing_page"}
