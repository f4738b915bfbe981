"""The pipeline page's map of stages matches the tree: every library module has a stage,
every rule file its package, and every script a rule; the generated results in the docs and
the README are unedited; the workflow catalog's layout."""

from __future__ import annotations

import ast
import re
import tomllib

import yaml
from helpers import REPO

import layerscope
from layerscope.results.readme import FINDINGS, pasted_block

LIBRARY = REPO / "src" / "layerscope"


def readme_map() -> dict[str, dict[str, set[str]]]:
    """package -> {"rule_file", "scripts", "modules"} from the stage table of docs/pipeline.md."""
    text = (REPO / "docs" / "pipeline.md").read_text()
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


STAGE_ORDER = ["core", "data", "weights", "train", "explain", "results"]


def imported_stages(path) -> set[str]:
    """The stage packages a library module imports (at any depth of the file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name.split(".")[1] for name in names if name.startswith("layerscope.") and name.count(".") >= 1}


def test_no_stage_imports_a_higher_one():
    """Imports point down (core < data < weights < train < explain < results): rerun
    triggers follow imports, so an upward one reruns a stage for an edit above it."""
    upward = []
    for path in sorted(LIBRARY.rglob("*.py")):
        stage = path.relative_to(LIBRARY).parts[0]
        if stage not in STAGE_ORDER:
            continue
        for other in imported_stages(path):
            if STAGE_ORDER.index(other) > STAGE_ORDER.index(stage):
                upward.append(f"{path.relative_to(LIBRARY)} imports layerscope.{other}")
    assert upward == []


def test_the_import_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from layerscope.results.comparisons import seed_test\n")
    assert imported_stages(module) == {"results"}


def test_explain_package_imports_no_method():
    """Each study module imports the methods it uses, so a method's edit reruns only its users."""
    assert imported_stages(LIBRARY / "explain" / "__init__.py") == set()


def test_the_results_page_holds_the_generated_block_unedited():
    """docs/results.md's results are pasted by ``make readme-results`` from the file the
    tables rule writes; a hand edit of the pasted text no longer matches its digest."""
    source, text, unedited = pasted_block((REPO / "docs" / "results.md").read_text())
    assert source == "results/default/tables/readme_results.md"
    assert unedited, "the results block of docs/results.md was edited by hand: rerun make readme-results"
    assert "| approach (Table 8)" in text and "Trained on:" in text


def test_the_readmes_findings_come_unedited_from_the_same_run_as_the_results_page():
    """The README's short block is pasted with the long one, from the same run folder; each
    of its claims carries the verdict the long block gives that claim."""
    source, text, unedited = pasted_block((REPO / "README.md").read_text(), FINDINGS)
    long_source, long_text, _ = pasted_block((REPO / "docs" / "results.md").read_text())
    assert unedited, "the README's findings block was edited by hand: rerun make readme-results"
    assert long_source == f"{source}/tables/readme_results.md"
    claims = [line for line in text.splitlines() if line.startswith("- **")]
    # empty until make readme-results pastes a run of this version
    assert text == "" or (claims and text.splitlines()[-1].startswith("- Trained on "))
    for line in claims:
        verdict, claim = re.fullmatch(r"- \*\*(.+?)\*\*: (.+?)(?: \(p = [^)]*\))?\.", line).groups()
        assert any(claim in row and verdict in row for row in long_text.splitlines()), line


def test_the_readmes_cost_table_is_the_performance_pages():
    """The two commands' cost per machine kind has one home, docs/performance.md; the README shows a copy."""

    def costs(path):
        text = path.read_text()
        return text[text.index("<!-- costs") : text.index("<!-- end of costs -->")].split("\n", 1)[1]

    assert costs(REPO / "README.md") == costs(REPO / "docs" / "performance.md")


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
