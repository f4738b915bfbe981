"""The README's map of stages matches the tree (issue 9): every library module has a
stage, every rule file its package, and every script a rule."""

from __future__ import annotations

import re

from conftest import REPO

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
