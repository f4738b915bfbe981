"""Hand-written run files for the results tables: the runs, their accuracies and readers of the written tables."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

CLASSES = ["crack", "inclusion", "scratch", "pit"]


# (k, optimizer): (val accuracy, test accuracy). freeze2-sgd has the best TEST accuracy,
# freeze3-momentum the best VALIDATION accuracy; freeze4-nag never finishes.
FREEZE = {
    (5, "sgd"): (0.60, 0.51),
    (5, "momentum"): (0.61, 0.52),
    (5, "nag"): (0.62, 0.53),
    (4, "sgd"): (0.63, 0.54),
    (4, "momentum"): (0.64, 0.55),
    (3, "sgd"): (0.70, 0.60),
    (3, "momentum"): (0.90, 0.70),
    (3, "nag"): (0.71, 0.61),
    (2, "sgd"): (0.65, 0.95),
    (2, "momentum"): (0.66, 0.56),
    (2, "nag"): (0.67, 0.57),
    (1, "sgd"): (0.68, 0.58),
    (1, "momentum"): (0.69, 0.59),
    (1, "nag"): (0.72, 0.62),
}


OTHERS = {  # run id: (train, val, test accuracy)
    "lenet5-tanh-sgd": (0.99, 0.80, 0.60),
    "lenet5-relu-adam": (0.95, 0.82, 0.58),
    "vgg16-scratch-momentum": (0.99, 0.85, 0.50),
    "vgg16-finetune": (0.99, 0.92, 0.80),
}


RUN_IDS = [
    *list(OTHERS)[:3],
    *(f"vgg16-freeze{k}-{opt}" for k in range(1, 6) for opt in ("sgd", "momentum", "nag")),
    "vgg16-finetune",
]


VAL_LOSS = (0.9, 0.5, 0.7)  # the kept model is epoch 2, not the last one


def write_run(
    runs_dir: Path,
    run_id: str,
    accuracies: tuple[float, float, float],
    test_f1: float | None = None,
    baseline: tuple[float, float] = (0.25, 0.10),
    ci: tuple[float, float] | None = None,
    correct: list[bool] | None = None,
    health: dict | None = None,
) -> None:
    """A finished run as the train rule leaves it: metrics.json and a 3-epoch history.csv."""

    def split(accuracy: float, f1: float) -> dict:
        return {"n": 12, "accuracy": accuracy, "f1_weighted": f1, "f1_macro": f1}

    train, val, test = accuracies
    metrics = {
        "run_id": run_id,
        "epochs_run": 3,
        "stopped_early": False,
        "train": split(train, train),
        "val": split(val, val),
        "test": split(test, test if test_f1 is None else test_f1),
        "majority_baseline": {"class_index": 1, "accuracy": baseline[0], "f1_weighted": baseline[1]},
    }
    if ci is not None:
        metrics["test"]["accuracy_ci"] = list(ci)
    if health is not None:
        metrics["health"] = health
    run = runs_dir / run_id
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(metrics))
    if correct is not None:  # test predictions: image i is right or wrong
        pd.DataFrame(
            {
                "path": [f"img{i}.png" for i in range(len(correct))],
                "true": "crack",
                "predicted": ["crack" if c else "pit" for c in correct],
            }
        ).to_csv(run / "predictions.csv", index=False)
    pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [1.2, 0.8, 0.6],
            "accuracy": [0.4, 0.6, train],
            "val_loss": VAL_LOSS,
            "val_accuracy": [0.3, 0.5, val],
        }
    ).to_csv(run / "history.csv", index=False)


def markdown_rows(text: str) -> dict[str, dict[str, str]]:
    """Markdown table rows keyed by their first cell, each a {header: cell} dict."""
    lines = [
        [cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")
    ]
    return {row[0]: dict(zip(lines[0], row)) for row in lines[2:]}


class _TableParser(HTMLParser):
    """The rows of each HTML table, each cell as (Styler id, text)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("th", "td"):
            self._cell = [dict(attrs).get("id", ""), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self.tables[-1][-1].append(tuple(self._cell))
            self._cell = None


def html_rows(text: str, table: int = 0) -> dict[str, dict[str, tuple[str, bool]]]:
    """Rows of the ``table``-th HTML table keyed by their first cell: {header: (text, bold)}.

    Bold is read from the Styler's CSS rules (which group several cells' selectors in one rule).
    """
    parser = _TableParser()
    parser.feed(text)
    rows = parser.tables[table]
    header = [cell for _, cell in rows[0]]
    bold = {
        selector
        for selectors in re.findall(r"([^{}]+)\{\s*font-weight: bold;", text)
        for selector in re.findall(r"#(T_\w+)", selectors)
    }
    return {row[0][1]: {h: (cell, key in bold) for h, (key, cell) in zip(header, row)} for row in rows[1:]}
