"""Study A's result tables (4-9), the comparison with the paper and the sanity gate.

Every table is built from the runs' ``metrics.json`` and ``history.csv`` files, so the
numbers can be traced to a run. A run that has not finished stays in the tables as
``missing``: a grid with a silently absent cell would read as a complete experiment.
Whenever a "best" run is picked it is picked by validation accuracy, never by test
accuracy (choosing on the test split would leak it into model selection).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from layerscope.atomic import write_text
from layerscope.errors import LayerscopeError
from layerscope.runs import OPTIMIZERS

MISSING = "missing"
NOT_REPORTED = "n/a"  # a figure the source never gave, as opposed to a run that has not finished
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "Momentum", "nag": "NAG", "adam": "Adam", "rmsprop": "RMSProp"}
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
SPLITS = ("train", "val", "test")

_OPT = "|".join(OPTIMIZERS)
_RUN_NAMES = {
    "lenet5": re.compile(rf"lenet5-(?:tanh|relu)-(?P<optimizer>{_OPT})"),
    "scratch": re.compile(rf"vgg16-scratch-(?P<optimizer>{_OPT})"),
    "freeze": re.compile(rf"vgg16-freeze(?P<k>[0-5])-(?P<optimizer>{_OPT})"),
    "finetune": re.compile(r"vgg16-finetune"),
    "gap": re.compile(r"vgg16-gap-freeze(?P<k>[0-5])"),
}

# The PAPER's published figures (study A, see shared/paper-notes.md), not our results:
# kept only to print beside ours. Table 8 gives fixed feature extraction .850/.814/.653
# although the paper's text says val .813 / test .625; Table 8's own numbers are used.
PAPER_SUMMARY = {  # Table 8: train, val, test accuracy
    "LeNet-5": (0.995, 0.816, 0.625),
    "Random weights": (0.996, 0.908, 0.569),
    "Fixed feature extraction": (0.850, 0.814, 0.653),
    "Transfer": (0.999, 0.919, 0.778),
    "Fine-tuning": (0.998, 0.917, 0.792),
}
PAPER_FINETUNE_F1_WEIGHTED = 0.778  # Table 7, test split
PAPER_FREEZE_GRID = {  # Table 9: test accuracy by frozen blocks k, optimizer
    5: {"sgd": 0.639, "momentum": 0.653, "nag": 0.625},
    4: {"sgd": 0.639, "momentum": 0.722, "nag": 0.653},
    3: {"sgd": 0.736, "momentum": 0.778, "nag": 0.778},
    2: {"sgd": 0.764, "momentum": 0.708, "nag": 0.764},
    1: {"sgd": 0.694, "momentum": 0.736, "nag": 0.764},
}
# Published reference on the default dataset (elpv, 4 defect-probability classes):
# Deitsch et al. 2019, Solar Energy 185, CNN average accuracy 88.42% (their protocol, not ours).
DEITSCH_2019_ELPV_ACCURACY = 0.8842


def parse_name(run_id: str) -> tuple[str, int | None, str | None]:
    """(family, frozen blocks, optimizer) from a run id, so missing runs can still be placed."""
    for family, pattern in _RUN_NAMES.items():
        if match := pattern.fullmatch(run_id):
            parts = match.groupdict()
            k = parts.get("k")
            return family, None if k is None else int(k), parts.get("optimizer")
    raise LayerscopeError(f"unknown run id '{run_id}' (see layerscope.runs for the naming rules)")


def _read_history(path: Path) -> pd.DataFrame:
    try:
        history = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read the training history ({error})") from error
    absent = [column for column in HISTORY_COLUMNS if column not in history]
    if absent:
        raise LayerscopeError(f"{path}: history lacks column(s) {', '.join(absent)}")
    return history


def _best_epoch(history: pd.DataFrame) -> dict | None:
    """The row of the kept model: training keeps the first epoch with the lowest val_loss."""
    if history["val_loss"].isna().all():
        return None
    row = history.loc[history["val_loss"].idxmin()]
    return {"epoch": int(row["epoch"]), "loss": float(row["loss"]), "val_loss": float(row["val_loss"])}


def _read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read the run's metrics ({error})") from error
    absent = [key for key in (*SPLITS, "majority_baseline") if key not in metrics]
    if absent:
        raise LayerscopeError(f"{path}: metrics lack key(s) {', '.join(absent)}")
    return metrics


def load_runs(runs_dir: str | os.PathLike, run_ids: Sequence[str]) -> dict[str, dict | None]:
    """Each run's metrics.json plus ``best_epoch`` (from history.csv); None for an unfinished run.

    ``best_epoch`` holds the epoch, train loss and val loss of the kept model (lowest
    val_loss), because metrics.json has accuracies and F1 but no losses.
    """
    runs: dict[str, dict | None] = {}
    for run_id in run_ids:
        parse_name(run_id)  # a misspelt id would otherwise read as an unfinished run
        metrics_file = Path(runs_dir) / run_id / "metrics.json"
        if not metrics_file.is_file():
            runs[run_id] = None
            continue
        history_file = metrics_file.with_name("history.csv")
        if not history_file.is_file():
            raise LayerscopeError(f"{history_file} is missing although {metrics_file} exists: rerun '{run_id}'")
        runs[run_id] = {**_read_metrics(metrics_file), "best_epoch": _best_epoch(_read_history(history_file))}
    return runs


def load_histories(runs_dir: str | os.PathLike, run_ids: Sequence[str]) -> dict[str, pd.DataFrame | None]:
    """Each run's per-epoch history.csv; None for an unfinished run."""
    histories: dict[str, pd.DataFrame | None] = {}
    for run_id in run_ids:
        parse_name(run_id)  # a misspelt id would otherwise read as an unfinished run
        path = Path(runs_dir) / run_id / "history.csv"
        histories[run_id] = _read_history(path) if path.is_file() else None
    return histories


def _metric(run: dict | None, split: str, key: str = "accuracy") -> float:
    return math.nan if run is None else float(run[split][key])


def _select(runs: Mapping[str, dict | None], family: str, k: int | None = None) -> dict[str, dict | None]:
    """The runs of one family (and freeze depth), in optimizer order then input order."""
    chosen = {run_id: run for run_id, run in runs.items()
              if parse_name(run_id)[0] == family and (k is None or parse_name(run_id)[1] == k)}
    return dict(sorted(chosen.items(), key=lambda item: _optimizer_rank(parse_name(item[0])[2])))


def _optimizer_rank(optimizer: str | None) -> int:
    return OPTIMIZERS.index(optimizer) if optimizer in OPTIMIZERS else len(OPTIMIZERS)


def _label(optimizer: str | None) -> str:
    return OPTIMIZER_LABELS.get(optimizer, str(optimizer))


def best_by_val(candidates: Mapping[str, dict | None]) -> str | None:
    """The finished candidate with the highest validation accuracy (first on ties)."""
    finished = [run_id for run_id, run in candidates.items() if run is not None]
    return max(finished, key=lambda run_id: _metric(candidates[run_id], "val"), default=None)


def lenet5_layout(input_shape: Sequence[int], num_classes: int) -> pd.DataFrame:
    """Table 4: every layer of the real LeNet-5 model, its output shape and parameter count."""
    from layerscope.models import lenet5  # imports TensorFlow; only this table needs it

    model = lenet5(tuple(input_shape), num_classes, "tanh")  # the activation changes no shape or count
    rows = [
        {"layer": layer.name, "type": type(layer).__name__,
         "output_shape": " x ".join(str(d) for d in layer.output.shape[1:]),
         "parameters": int(layer.count_params())}
        for layer in model.layers
    ]
    rows.append({"layer": "total", "type": "", "output_shape": "", "parameters": int(model.count_params())})
    return pd.DataFrame(rows).set_index("layer")


def _loss_and_accuracy(run: dict | None) -> dict:
    best = (run or {}).get("best_epoch") or {}
    return {
        "best_epoch": best.get("epoch", math.nan),
        "train_loss": best.get("loss", math.nan),
        "val_loss": best.get("val_loss", math.nan),
        "val_accuracy": _metric(run, "val"),
        "test_accuracy": _metric(run, "test"),
    }


def vgg_by_initialisation(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 5: random weights (vgg16-scratch-*) against fixed feature extraction (vgg16-freeze5-*).

    Losses are the kept model's (best epoch's) train and val loss, so they describe the
    same weights as the accuracies.
    """
    groups = (("random weights", _select(runs, "scratch")),
              ("fixed feature extraction", _select(runs, "freeze", k=5)))
    rows = [
        {"run": run_id, "initialisation": name, "optimizer": _label(parse_name(run_id)[2]),
         **_loss_and_accuracy(run)}
        for name, group in groups for run_id, run in group.items()
    ]
    return _frame(rows, "run", ["initialisation", "optimizer", "best_epoch", "train_loss", "val_loss",
                                "val_accuracy", "test_accuracy"], {"best_epoch": "Int64"})


def freeze3_by_optimizer(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 6: blocks 1-3 frozen, one row per optimizer (adaptive ones may stop early or diverge)."""
    rows = [
        {"optimizer": _label(parse_name(run_id)[2]), **_loss_and_accuracy(run),
         "test_f1_weighted": _metric(run, "test", "f1_weighted"),
         "epochs_run": math.nan if run is None else run["epochs_run"],
         "stopped_early": math.nan if run is None else run["stopped_early"],
         "diverged": math.nan if run is None else run.get("diverged", False)}
        for run_id, run in _select(runs, "freeze", k=3).items()
    ]
    return _frame(rows, "optimizer", ["best_epoch", "train_loss", "val_loss", "val_accuracy", "test_accuracy",
                                      "test_f1_weighted", "epochs_run", "stopped_early", "diverged"],
                  {"best_epoch": "Int64", "epochs_run": "Int64", "stopped_early": "boolean", "diverged": "boolean"})


def finetune_result(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 7: the fine-tuned model's accuracy and F1 on each split."""
    run = runs.get("vgg16-finetune")
    rows = [{"split": split, "n": math.nan if run is None else run[split]["n"],
             **{key: _metric(run, split, key) for key in ("accuracy", "f1_weighted", "f1_macro")}}
            for split in SPLITS]
    return _frame(rows, "split", ["n", "accuracy", "f1_weighted", "f1_macro"], {"n": "Int64"})


def _summary_candidates(runs: Mapping[str, dict | None]) -> dict[str, dict[str, dict | None]]:
    transfer = {run_id: run for run_id, run in _select(runs, "freeze").items() if 1 <= parse_name(run_id)[1] <= 4}
    return {
        "LeNet-5": _select(runs, "lenet5"),
        "Random weights": _select(runs, "scratch"),
        "Fixed feature extraction": _select(runs, "freeze", k=5),
        "Transfer": transfer,
        "Fine-tuning": _select(runs, "finetune"),
    }


def summary(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 8: train / val / test accuracy of each approach's best run by VALIDATION accuracy.

    "Transfer" is the best of the freeze depths 1-4 (depth 5 is fixed feature
    extraction); ``missing_candidates`` counts the runs of the group that have not
    finished, so a pick among a partial group is visible as such.
    """
    rows = []
    for model, candidates in _summary_candidates(runs).items():
        chosen = best_by_val(candidates)
        run = None if chosen is None else candidates[chosen]
        rows.append({"model": model, "run": chosen or MISSING,
                     **{f"{split}_accuracy": _metric(run, split) for split in SPLITS},
                     "missing_candidates": sum(r is None for r in candidates.values())})
    return _frame(rows, "model", ["run", "train_accuracy", "val_accuracy", "test_accuracy", "missing_candidates"])


def freeze_grid(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 9: test accuracy by frozen blocks (rows, deepest first) and optimizer (columns)."""
    cells = {parse_name(run_id)[1:]: _metric(run, "test") for run_id, run in _select(runs, "freeze").items()}
    depths = sorted({k for k, _ in cells}, reverse=True)
    optimizers = sorted({opt for _, opt in cells}, key=_optimizer_rank)
    grid = pd.DataFrame(
        [[cells.get((k, opt), math.nan) for opt in optimizers] for k in depths],
        index=pd.Index(depths, name="frozen_blocks"), columns=[_label(opt) for opt in optimizers], dtype=float,
    )
    grid.columns.name = "optimizer"
    return grid


def _frame(rows: list[dict], index: str, columns: list[str], dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rows to a frame with a named index; nullable dtypes keep counts whole next to a missing run."""
    return pd.DataFrame(rows, columns=[index, *columns]).astype(dict(dtypes or {})).set_index(index)


def sanity_gate(runs: Mapping[str, dict | None]) -> dict:
    """Does the best VGG-16 run (by val accuracy) beat the majority-class baseline on test?

    Both accuracy and weighted F1 must be strictly higher; with no finished VGG-16 run the
    gate fails.
    """
    vgg = {run_id: run for run_id, run in runs.items() if parse_name(run_id)[0] != "lenet5"}
    chosen = best_by_val(vgg)
    if chosen is None:
        return {"run": None, "val_accuracy": None, "accuracy": None, "f1_weighted": None,
                "baseline_class_index": None, "baseline_accuracy": None, "baseline_f1_weighted": None,
                "passed": False}
    run, baseline = vgg[chosen], vgg[chosen]["majority_baseline"]
    accuracy, f1 = _metric(run, "test"), _metric(run, "test", "f1_weighted")
    return {"run": chosen, "val_accuracy": _metric(run, "val"), "accuracy": accuracy, "f1_weighted": f1,
            "baseline_class_index": baseline["class_index"], "baseline_accuracy": baseline["accuracy"],
            "baseline_f1_weighted": baseline["f1_weighted"],
            "passed": bool(accuracy > baseline["accuracy"] and f1 > baseline["f1_weighted"])}


def _majority(runs: Mapping[str, dict | None]) -> dict | None:
    """The majority-class baseline; every run of an experiment shares the same data split."""
    return next((run["majority_baseline"] for run in runs.values() if run is not None), None)


def paper_comparison(runs: Mapping[str, dict | None], classes: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's published Table 7-9 figures beside ours, plus two reference rows.

    ``published`` holds the PAPER's numbers (or Deitsch et al. 2019 for the elpv
    reference); ``ours`` our runs'; ``n/a`` marks a figure its source never gave.
    """
    table8, grid = summary(runs), freeze_grid(runs)
    rows = [("Table 8", model, f"{split} accuracy", paper[i], table8.loc[model, f"{split}_accuracy"])
            for model, paper in PAPER_SUMMARY.items() for i, split in enumerate(SPLITS)]
    rows.append(("Table 7", "Fine-tuning", "test weighted F1", PAPER_FINETUNE_F1_WEIGHTED,
                 _metric(runs.get("vgg16-finetune"), "test", "f1_weighted")))
    for k, cells in PAPER_FREEZE_GRID.items():
        for optimizer, paper in cells.items():
            ours = grid.loc[k, _label(optimizer)] if k in grid.index and _label(optimizer) in grid else math.nan
            rows.append(("Table 9", f"{k} frozen block{'s' * (k != 1)}", _label(optimizer), paper, ours))
    rows.extend(_reference_rows(runs, classes))
    frame = pd.DataFrame(rows, columns=["table", "row", "column", "published", "ours"])
    frame["difference"] = [
        ours - paper if NOT_REPORTED not in (ours, paper) else NOT_REPORTED
        for ours, paper in zip(frame["ours"], frame["published"])
    ]
    return frame.set_index(["table", "row", "column"])


def _reference_rows(runs: Mapping[str, dict | None], classes: Sequence[str] | None) -> list[tuple]:
    baseline = _majority(runs)
    if baseline is None:
        name, accuracy, f1 = "Majority-class baseline", math.nan, math.nan
    else:
        index = baseline["class_index"]
        name = f"Majority-class baseline (always '{classes[index] if classes else index}')"
        accuracy, f1 = baseline["accuracy"], baseline["f1_weighted"]
    return [
        ("Reference", name, "test accuracy", NOT_REPORTED, accuracy),
        ("Reference", name, "test weighted F1", NOT_REPORTED, f1),
        ("Reference", "Deitsch et al. 2019 CNN on elpv (their protocol; reference only)", "accuracy",
         DEITSCH_2019_ELPV_ACCURACY, NOT_REPORTED),
    ]


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return MISSING
    if pd.api.types.is_bool(value):
        return "yes" if value else "no"
    if pd.api.types.is_float(value):
        return f"{value:.3f}"
    return str(value)


def best_mask(df: pd.DataFrame, columns: Sequence[str], scope: str = "column") -> pd.DataFrame:
    """True where a cell holds the maximum of its column (scope "column") or of all ``columns`` ("grid")."""
    if scope not in ("column", "grid"):
        raise ValueError(f"best scope must be 'column' or 'grid', got {scope!r}")
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    values = df[list(columns)].apply(pd.to_numeric, errors="coerce")
    top = values.max() if scope == "column" else values.max().max()
    mask[list(columns)] = values.eq(top)
    return mask


def _rows(
    df: pd.DataFrame, mask: pd.DataFrame | None, escape: Callable[[str], str], bold: Callable[[str], str]
) -> tuple[list[str], list[list[str]], int]:
    """Header and body cells as text (index levels first), and the number of index columns."""
    mask = pd.DataFrame(False, index=df.index, columns=df.columns) if mask is None else mask
    keys = [key if isinstance(key, tuple) else (key,) for key in df.index]
    body = [
        [escape(_cell(v)) for v in key]
        + [bold(escape(_cell(v))) if marked else escape(_cell(v)) for v, marked in zip(row, flags)]
        for key, row, flags in zip(keys, df.itertuples(index=False), mask.itertuples(index=False))
    ]
    header = [name or "" for name in df.index.names] + [str(c) for c in df.columns]
    return [escape(h) for h in header], body, df.index.nlevels


def _numeric_columns(df: pd.DataFrame) -> list[bool]:
    """Which columns to right-align: all but those holding only text."""
    return [not all(isinstance(v, str) for v in df[c].dropna()) for c in df.columns]


def to_markdown(df: pd.DataFrame, mask: pd.DataFrame | None = None) -> str:
    """A GitHub-flavoured Markdown table; cells in ``mask`` in bold."""
    header, body, n_index = _rows(df, mask, lambda text: text.replace("|", r"\|"), lambda text: f"**{text}**")
    align = ["---"] * n_index + ["---:" if numeric else "---" for numeric in _numeric_columns(df)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, align, *body]) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(df: pd.DataFrame, mask: pd.DataFrame | None = None, caption: str | None = None) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``); cells in ``mask`` in \\textbf."""
    header, body, n_index = _rows(df, mask, _latex_escape, lambda text: rf"\textbf{{{text}}}")
    spec = "l" * n_index + "".join("r" if numeric else "l" for numeric in _numeric_columns(df))
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule",
              *(" & ".join(row) + r" \\" for row in body), r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    df: pd.DataFrame,
    out_stem: str | os.PathLike,
    best: Sequence[str] = (),
    best_scope: str = "column",
    caption: str | None = None,
) -> list[Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` atomically; returns their paths.

    The maximum of each ``best`` column (``best_scope="column"``) or of all of them
    together (``"grid"``) is bold in Markdown and LaTeX. Missing values read "missing"
    in all three files (read the CSV back with ``na_values="missing"``).
    """
    stem = Path(out_stem)
    mask = best_mask(df, best, best_scope)
    markdown = to_markdown(df, mask)
    paths = [stem.with_name(stem.name + suffix) for suffix in (".csv", ".md", ".tex")]
    write_text(paths[0], df.to_csv(na_rep=MISSING))
    write_text(paths[1], f"{caption}\n\n{markdown}" if caption else markdown)
    write_text(paths[2], to_latex(df, mask, caption))
    return paths


TABLES = {  # file stem: (builder, best columns, best scope, caption)
    "table5_vgg_initialisation": (vgg_by_initialisation, ["val_accuracy", "test_accuracy"], "column",
                                  "Table 5. VGG-16: random weights vs fixed feature extraction "
                                  "(losses of the kept, lowest-val_loss epoch)."),
    "table6_freeze3_optimizers": (freeze3_by_optimizer, ["val_accuracy", "test_accuracy", "test_f1_weighted"],
                                  "column", "Table 6. VGG-16 with blocks 1-3 frozen, by optimizer."),
    "table7_finetune": (finetune_result, [], "column", "Table 7. Fine-tuning: all layers unfrozen."),
    "table8_summary": (summary, ["train_accuracy", "val_accuracy", "test_accuracy"], "column",
                       "Table 8. Accuracy of each approach; the run of each is picked by validation "
                       "accuracy (transfer: freeze depths 1-4)."),
    "table9_freeze_grid": (freeze_grid, None, "grid",
                           "Table 9. Test accuracy by frozen blocks 1..k and optimizer."),
}


def _gate_line(gate: dict, classes: Sequence[str]) -> str:
    if gate["run"] is None:
        return "FAILED: no VGG-16 run has finished, so nothing can be compared with the majority-class baseline."
    verdict = "PASSED" if gate["passed"] else "FAILED"
    return (f"{verdict}: {gate['run']} (best VGG-16 run by validation accuracy) scores test accuracy "
            f"{gate['accuracy']:.3f} and weighted F1 {gate['f1_weighted']:.3f} against the majority-class "
            f"baseline (always '{classes[gate['baseline_class_index']]}') {gate['baseline_accuracy']:.3f} and "
            f"{gate['baseline_f1_weighted']:.3f}.")


def _summary_markdown(runs: Mapping[str, dict | None], tables: dict[str, pd.DataFrame], comparison: pd.DataFrame,
                      gate: dict, classes: Sequence[str]) -> str:
    missing = [run_id for run_id, run in runs.items() if run is None]
    status = (f"Missing runs ({len(missing)} of {len(runs)}): {', '.join(missing)}." if missing
              else f"All {len(runs)} runs finished.")
    sections = ["# Results summary", status,
                "Every best run is picked by validation accuracy; picking by test accuracy would leak the "
                "test split into model selection."]
    for stem in ("table8_summary", "table9_freeze_grid"):
        _, best, scope, caption = TABLES[stem]
        df = tables[stem]
        sections += [f"## {caption}", to_markdown(df, best_mask(df, df.columns if best is None else best, scope))]
    sections += ["## Sanity gate", _gate_line(gate, classes),
                 "## Comparison with the paper",
                 "`published`: the paper's figures (Deitsch et al. 2019 for the elpv reference); "
                 "`ours`: this experiment; `n/a`: not reported by that source.",
                 to_markdown(comparison)]
    return "\n\n".join(section.rstrip("\n") for section in sections) + "\n"


def write_all_tables(
    runs_dir: str | os.PathLike,
    run_ids: Sequence[str],
    out_dir: str | os.PathLike,
    input_shape: Sequence[int],
    num_classes: int,
    classes: Sequence[str],
) -> list[Path]:
    """Tables 4-9, the paper comparison, sanity_gate.json and summary.md; returns the files written."""
    if len(classes) != num_classes:
        raise LayerscopeError(f"{num_classes} classes expected but {len(classes)} class names given: {list(classes)}")
    out = Path(out_dir)
    runs = load_runs(runs_dir, run_ids)
    files = write_table(lenet5_layout(input_shape, num_classes), out / "table4_lenet5_layout",
                        caption=f"Table 4. LeNet-5 layout for input {' x '.join(map(str, input_shape))}.")
    tables = {}
    for stem, (builder, best, scope, caption) in TABLES.items():
        df = tables[stem] = builder(runs)
        files += write_table(df, out / stem, df.columns if best is None else best, scope, caption)
    comparison = paper_comparison(runs, classes)
    files += write_table(comparison, out / "comparison_paper",
                         caption="Published figures (the paper; Deitsch et al. 2019) beside ours.")
    gate = sanity_gate(runs)
    write_text(out / "sanity_gate.json", json.dumps(gate, indent=1) + "\n")
    write_text(out / "summary.md", _summary_markdown(runs, tables, comparison, gate, classes))
    return [*files, out / "sanity_gate.json", out / "summary.md"]
