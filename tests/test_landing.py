"""The report's landing page, from tables written by the tables rule's own code."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pandas as pd
import pytest
from helpers.runs import CLASSES, FREEZE, OTHERS, RUN_IDS, html_rows, write_run

from layerscope.core.errors import LayerscopeError
from layerscope.results import landing, writer


@pytest.fixture
def tables_dir(tmp_path):
    root = tmp_path / "runs"
    for run_id, accuracies in OTHERS.items():
        write_run(root, run_id, accuracies)
    for (k, opt), (val, test) in FREEZE.items():
        write_run(root, f"vgg16-freeze{k}-{opt}", (0.9, val, test))
    writer.write_all_tables(root, RUN_IDS, tmp_path / "tables", (32, 32, 3), 4, CLASSES)
    # the hand-written runs carry no bootstrap intervals: give the transfer row one
    path = tmp_path / "tables" / "table8_summary.csv"
    table8 = pd.read_csv(path, index_col=0, keep_default_na=False)
    table8.loc["Transfer (3 frozen blocks)", ["test_accuracy_ci_low", "test_accuracy_ci_high"]] = ["0.65", "0.75"]
    table8.to_csv(path)
    return tmp_path / "tables"


def make_page(tables_dir, tmp_path, recommendation=None):
    figure = tmp_path / "figures" / "freeze_grid_heatmap.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"\x89PNG fake")
    return landing.landing_html(
        tables_dir=tables_dir,
        figures=[figure],
        recommendation=recommendation,
        train_seconds={"a": 1800.0, "b": 1800.0},
        experiment="paper",
        host="Linux, test CPU, 2 cores, 0 NVIDIA GPU(s)",
    ), figure


def tables_in(page: str) -> list[str]:
    return re.findall(r"<table.*?</table>", page, re.S)


def test_landing_page_leads_with_the_claims_then_table8_grid_and_baselines(tables_dir, tmp_path):
    page, figure = make_page(tables_dir, tmp_path, {"sentence": "Freeze 3 blocks, the explanations say."})
    table8 = pd.read_csv(tables_dir / "table8_summary.csv", index_col=0, na_values="missing")
    assert len(tables_in(page)) == 3
    claims, summary, grid = (html_rows(page, table) for table in range(3))
    transfer = summary["Transfer (3 frozen blocks)"]
    assert transfer["run"][0] == table8.loc["Transfer (3 frozen blocks)", "run"] == "vgg16-freeze3-momentum"
    row = table8.loc["Transfer (3 frozen blocks)"]
    assert row.test_accuracy == 0.7 and table8["test_accuracy"].max() > 0.7
    assert transfer["test_accuracy [95% CI]"] == ("0.700 [0.650, 0.750]", False)
    assert (
        summary["Majority class"]["test_f1_weighted [95% CI]"][0]
        == f"{table8.loc['Majority class', 'test_f1_weighted']:.3f}"
    )
    best_val = table8["val_accuracy"].max()
    assert {model for model, cells in summary.items() if cells["val_accuracy"][1]} == set(
        table8.index[table8["val_accuracy"] == best_val]
    )
    verdicts = pd.read_csv(tables_dir / "comparison_paper.csv", index_col=0)["verdict"]
    shortened = {"not shown (same direction)": "not shown", "not shown (opposite direction)": "not shown"}
    assert {claim: row["verdict"][0] for claim, row in claims.items()} == {
        claim: shortened.get(v, v) for claim, v in verdicts.items()
    }
    assert page.index("claims checked on our runs") < page.index("Table 8.") < page.index("Baselines.")
    assert grid["2"]["SGD"] == ("0.950", True)  # the grid's one best cell, bold
    gate = json.loads((tables_dir / "sanity_gate.json").read_text())
    assert gate["sentence"].startswith("PASSED") and gate["sentence"] in page.replace("&#x27;", "'")
    assert "Freeze 3 blocks, the explanations say." in page
    assert "summed over 2 runs: 1.00 h" in page and "test CPU" in page and "Wall time" not in page
    assert f"app.showResultInfo('{quote(str(figure))}')" in page and "app.showCategory('Weight%20changes')" in page
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page


def test_landing_page_without_recommendation_or_tables(tables_dir, tmp_path):
    page, _ = make_page(tables_dir, tmp_path)
    assert "Freeze depth." not in page and len(tables_in(page)) == 3
    (tables_dir / "comparison_paper.csv").unlink()
    with pytest.raises(LayerscopeError, match="comparison_paper.csv"):
        make_page(tables_dir, tmp_path / "again")
