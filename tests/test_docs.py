"""The docs' generated parts are current: the API pages cover every public module, the rule
graph is the workflow's, every rule has its section; make help and the citation file."""

import importlib.util
import json
import re
import subprocess

import numpy as np
import yaml
from helpers import REPO
from PIL import Image

import layerscope
from layerscope.core import api_pages, rule_graph


def test_api_pages_are_generated_and_cover_every_public_module():
    pages = {path.stem: path.read_text() for path in (REPO / "docs" / "api").glob("*.md")}
    assert set(pages) == set(api_pages.packages()), "python -m layerscope.core.api_pages docs/api"
    for package, text in pages.items():
        assert text == api_pages.api_page(package), (
            f"docs/api/{package}.md is stale: python -m layerscope.core.api_pages docs/api"
        )
    listed = {
        line.removeprefix("::: ") for text in pages.values() for line in text.splitlines() if line.startswith(":::")
    }
    on_disk = {
        "layerscope." + ".".join(path.relative_to(REPO / "src" / "layerscope").with_suffix("").parts)
        for path in (REPO / "src" / "layerscope").glob("*/*.py")
        if not path.name.startswith("_")
    }
    assert listed == on_disk and len(listed) > 80
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text().replace("!!python/name:", ""))["nav"]
    api = next(entry["API reference"] for entry in nav if "API reference" in entry)
    assert sorted(next(iter(item.values())) for item in api) == sorted(f"api/{name}.md" for name in pages)


def test_mermaid_is_the_dot_graph_with_rule_names_and_sorted_edges():
    nodes = '\t0[label = "all", color = "x"];\n\t1[label = "train"];\n\t2[label = "data"];\n'
    dot = "digraph {\n" + nodes + "\t1 -> 0\n\t2 -> 1\n\t1 -> 1\n}"
    assert rule_graph.mermaid(dot) == (
        "```mermaid\nflowchart TB\n    all\n    data\n    train\n"
        "    data --> train\n    train --> all\n    train --> train\n```\n"
    )
    assert rule_graph.rules_of(rule_graph.mermaid(dot)) == {"all", "data", "train"}


def test_the_pipeline_page_has_the_workflows_rule_graph_and_a_section_per_rule():
    page = (REPO / "docs" / "pipeline.md").read_text()
    committed = rule_graph.pasted(page)
    assert committed == rule_graph.mermaid(rule_graph.rulegraph_dot()), (
        "docs/pipeline.md's rule graph is stale: python -m layerscope.core.rule_graph docs/pipeline.md"
    )
    declared = {
        name
        for path in [REPO / "workflow" / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
        for name in re.findall(r"^rule (\w+):", path.read_text(), re.MULTILINE)
    }
    assert rule_graph.rules_of(committed) == declared  # the paper config runs every rule
    assert set(re.findall(r"^### (\w+)$", page, re.MULTILINE)) == declared


def test_make_help_lists_every_target_in_one_line():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    run = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True)
    listed = [line.split()[0] for line in run.stdout.splitlines()]
    assert sorted(listed) == sorted(targets) and len(listed) == len(set(listed))
    assert all(len(line.split(maxsplit=1)) == 2 for line in run.stdout.splitlines())  # each with its line


def test_citation_file_names_this_version_and_the_studies():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["version"] == layerscope.__version__
    titles = " ".join(reference["title"] for reference in citation["references"])
    for words in ("interpretable machine learning", "gradient-ascent", "Accumulated Weight Changes", "photovoltaic"):
        assert words in titles


def load_script(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_figure_stacks_explanation_panels_over_the_3d_view(tmp_path):
    figure = load_script(REPO / "docs" / "readme_figure.py")
    ramp = np.linspace(0, 1, 32)
    smooth = np.outer(ramp, ramp)  # pictures that compress like real ones, not noise
    data, view = tmp_path / "data", tmp_path / "runs" / "r" / "figures"
    for folder in (data, view, tmp_path / "explain" / "r"):
        folder.mkdir(parents=True)
    np.save(
        data / "test_images.npy", np.repeat((255 * smooth)[None, ..., None], 6, axis=0).repeat(3, -1).astype(np.uint8)
    )
    np.save(data / "test_labels.npy", np.array([0, 1, 2, 0, 1, 2]))
    (data / "classes.json").write_text(json.dumps(["0.00", "0.50", "1.00"]))
    n, maps = 3, np.stack([smooth] * 3)
    np.savez(
        tmp_path / "explain" / "r" / "maps.npz",
        indices=np.array([0, 1, 5]),
        true=np.array([0, 1, 2]),
        predicted=np.array([0, 0, 2]),
        lime_labels=np.array([[0, 1]] * n),
        lime_positive=np.stack([maps] * 2, axis=1),
        lime_negative=np.stack([maps[:, ::-1]] * 2, axis=1),
        cam=maps,
        cam_predicted=np.array([0, 1, 2]),
        **{"gradcam/block3_conv3": maps, "gradcam/block5_conv3": maps},
        lime_hide=np.array("blur"),
    )
    Image.fromarray(np.full((300, 600, 3), 200, dtype=np.uint8)).save(view / "weight_changes_3d.png")
    assert figure.spread(np.array([0, 1, 2]), 2) == [0, 2]  # the first and the last class
    out = figure.main([str(tmp_path), "--run", "r", "--out", str(tmp_path / "readme.png")])
    made = Image.open(out)
    assert made.mode == "P" and made.width == figure.WIDTH and out.stat().st_size <= figure.MAX_BYTES
    assert made.height > 300 * figure.WIDTH / 600 + 200  # the panels sit above the scaled 3D view
    alone = figure.main([str(tmp_path), "--run", "r", "--no-explanations", "--out", str(tmp_path / "alone.png")])
    assert Image.open(alone).height == 700
