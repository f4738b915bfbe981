"""The README's map of stages matches the tree (issue 9): every library module has a
stage, every rule file its package, and every script a rule; the workflow catalog's layout."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml
from conftest import REPO

import layerscope

LIBRARY = REPO / "src" / "layerscope"


def readme_map() -> dict[str, dict[str, set[str]]]:
    """package -> {"rule_file", "scripts", "modules"} from the README's stage table."""
    text = (REPO / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`\w+`", cells[2]):
            rows[cells[2].strip("`")] = {
                "rules": set(re.findall(r"`(\w+\.smk)`", cells[1])),
                "scripts": set(re.findall(r"`(\w+\.py)`", cells[1])),
                "modules": set(re.findall(r"`(\w+\.py)`", cells[3])),
            }
    return rows


def test_every_library_module_has_a_stage_in_the_readme():
    rows = readme_map()
    packages = {path.name for path in LIBRARY.iterdir() if (path / "__init__.py").is_file()}
    assert set(rows) == packages
    for package, row in rows.items():
        modules = {path.name for path in (LIBRARY / package).glob("*.py")} - {"__init__.py"}
        assert row["modules"] == modules, package
    assert sorted(path.name for path in LIBRARY.glob("*.py")) == ["__init__.py"]  # nothing outside a stage


def test_rule_files_are_named_after_their_package_and_every_script_has_a_rule():
    rows = readme_map()
    rule_files = {path.name for path in (REPO / "workflow" / "rules").glob("*.smk")}
    assert set().union(*(row["rules"] for row in rows.values())) == rule_files
    for package, row in rows.items():
        assert row["rules"] == ({"common.smk"} if package == "core" else {f"{package}.smk"})
    scripts = {path.name for path in (REPO / "workflow" / "scripts").glob("*.py")}
    named = set().union(*(row["scripts"] for row in rows.values()))
    # The weight-change scripts are named by their rules ("scripts of the same names").
    assert scripts - named == {"render_weight_changes.py", "animate_weight_changes.py", "compare_freeze_depths.py"}
    for script in scripts:
        rule = script.removesuffix(".py")
        assert any(
            re.search(rf"rule {rule}:", (REPO / "workflow" / "rules" / name).read_text()) for name in rule_files
        ), script


def test_catalog_layout():
    """What the Snakemake workflow catalog reads: workflow/Snakefile, its usage file, the config
    README, a license, and a changelog with the package's version."""
    assert (REPO / "workflow" / "Snakefile").is_file()
    # A top-level Snakefile would be found first, and Snakemake would then look for the
    # default profile beside it (profiles/default), missing workflow/profiles/default.
    assert not (REPO / "Snakefile").exists()
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"] == {"conda": True} and usage["report"] is True
    assert (REPO / "config" / "README.md").stat().st_size > 0
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert pyproject["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    assert pyproject["requires-python"] == ">=3.11"
    assert f"## [{layerscope.__version__}] - " in (REPO / "CHANGELOG.md").read_text()


def test_plain_snakemake_uses_the_default_profile(tmp_path):
    """No flag but a config: Snakemake finds workflow/Snakefile and, beside it, the default profile."""
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "config/smoke.yaml", "--directory", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    output = run.stdout + run.stderr
    assert "Using workflow specific profile workflow/profiles/default" in output
    train = output[output.index("rule train:") :].split("\n\n")[0]
    assert "threads: 2" in train and "gpu_jobs=1" in train  # set-threads and set-resources in effect
