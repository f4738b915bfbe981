"""The generated results in the docs and the README, spliced in unedited.

The tables rule writes ``tables/readme_results.md`` from the run's own tables (the full
block: claims, Tables 8 and 9, baselines, machine). ``make readme-results`` copies it
between two markers of ``docs/results.md`` and writes the README's short block (each of
study A's claims with its verdict, the baselines, the machine and the wall time) from
the same run's files. Each begin marker records where its block came from and the sha256
of what it pasted, so a hand edit is caught (``tests/test_layout.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from layerscope.core.atomic import write_text
from layerscope.core.durations import hours_minutes
from layerscope.core.errors import LayerscopeError
from layerscope.core.machine import machines_of
from layerscope.core.render import read_table, to_markdown
from layerscope.results.comparisons import short_verdict
from layerscope.results.gate import gate_line

RESULTS = "results"
"""The full block's marker name (``docs/results.md``)."""
FINDINGS = "findings"
"""The short block's marker name (``README.md``)."""


def _begin(name: str) -> re.Pattern:
    return re.compile(rf"<!-- {name}: (?P<source>\S+) sha256=(?P<sha>[0-9a-f]{{64}}) -->\n")


def _end(name: str) -> str:
    return f"<!-- end of {name} -->\n"


def _with_interval(value: float, low: float, high: float) -> str:
    if value != value:
        return "missing"
    return f"{value:.3f}" if low != low else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def approach_table(table8: pd.DataFrame) -> pd.DataFrame:
    """Table 8 as the results page shows it: run, val accuracy, test accuracy and weighted F1 with intervals, notes.

    The notes carry the row's health flags and the flagged runs that scored higher on
    validation and were passed over for it.
    """
    rows = {
        model: {
            "run": row["run"],
            "val acc": "" if math.isnan(row["val_accuracy"]) else f"{row['val_accuracy']:.3f}",
            "test acc [95% CI]": _with_interval(
                row["test_accuracy"], row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]
            ),
            "test weighted F1 [95% CI]": _with_interval(
                row["test_f1_weighted"], row["test_f1_weighted_ci_low"], row["test_f1_weighted_ci_high"]
            ),
            "notes": _notes(row),
        }
        for model, row in table8.iterrows()
    }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "approach (Table 8)"
    return frame


def _notes(row: pd.Series) -> str:
    flags, passed = (row.get(key) for key in ("flags", "passed_over"))
    notes = [flags] if isinstance(flags, str) and flags else []
    if isinstance(passed, str) and passed:
        notes.append(f"passed over: {passed}")
    return "; ".join(notes)


def claim_lines(claims: pd.DataFrame) -> str:
    """Each claim on one line, the verdict first: what a reader came for, before any table.

    ``- **holds**: Transfer beats LeNet-5 (p = 0.001). Paper 0.778 vs 0.625; ours ...``
    """
    lines = []
    for claim, row in claims.iterrows():
        p_value = row["p_value"]
        p_text = "" if not isinstance(p_value, float) or math.isnan(p_value) else f" (p = {p_value:.3g})"
        lines.append(
            f"- **{short_verdict(row['verdict'])}**: {claim}{p_text}. Paper: {row['paper']}. Ours: {row['ours']}."
        )
    return "\n".join(lines) + "\n"


def freeze_cells(table9: pd.DataFrame) -> pd.DataFrame:
    """Table 9 as the results page shows it: per cell its seeds, mean ± sd and interval, epochs, best epochs, flags."""
    rows = {}
    for _, row in table9.iterrows():
        sd = row["test_accuracy_seed_sd"]
        mean = row["test_accuracy_seed_mean"]
        spread = "" if not isinstance(sd, float) or sd != sd else f" ± {sd:.3f}"
        rows[f"{row['frozen_blocks']} frozen, {row['optimizer']}"] = {
            "seeds": row["seeds"],
            "test acc, mean ± sd [95% CI]": "missing"
            if mean != mean
            else f"{mean:.3f}{spread}"
            + _interval_text(row["test_accuracy_seed_ci_low"], row["test_accuracy_seed_ci_high"]),
            "epochs run": row["epochs_run"],
            "best epoch": row["best_epoch"],
            "flags": row["flags"] or "",
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "cell (Table 9)"
    return frame


def _interval_text(low: float, high: float) -> str:
    return "" if low != low else f" [{low:.3f}, {high:.3f}]"


def readme_results(
    tables: Mapping[str, pd.DataFrame],
    gate: dict,
    classes: Sequence[str],
    variance: str,
    machines: Sequence[str] = (),
) -> str:
    """The results page's block: the claims with their verdicts first, Tables 8 and 9, baselines, machine."""
    claims = tables["comparison_paper"]
    sections = [
        claim_lines(claims[claims["verdict"] != "reference only"]),
        to_markdown(approach_table(tables["table8_summary"])),
        to_markdown(freeze_cells(tables["table9_statistics"])),
        variance,
        f"Baselines: {gate_line(gate, classes)}",
        claim_lines(claims[claims["verdict"] == "reference only"]).replace("**reference only**", "reference"),
    ]
    if machines:
        sections.append("Trained on: " + "; ".join(machines) + ".")
    return "\n".join(section.rstrip("\n") + "\n" for section in sections)


def findings_block(run_dir: str | os.PathLike) -> str:
    """The README's short block from a finished run's folder: what the run found, in a few lines.

    Each of study A's claims with its verdict (the published-figure references left to the
    full block), the baselines' figures, the training machines and the jobs' summed time (the
    cost tables'), read from the same files the landing page reads.

    Raises:
        LayerscopeError: a file of the run that is missing or unreadable.
    """
    run = Path(run_dir)
    tables = run / "tables"
    claims = _read(tables / "comparison_paper.csv", lambda path: read_table(path, index_col=0))
    gate = _read(tables / "sanity_gate.json", lambda path: json.loads(path.read_text()))
    job_seconds = _read(tables / "cost_rules.csv", lambda path: pd.read_csv(path)["total_s"].sum())
    machines = machines_of(json.loads(path.read_text()) for path in sorted(run.glob("runs/*/provenance.json")))
    study_a = claims[(claims["study"] == "A") & (claims["verdict"] != "reference only")]
    lines = [line.split(". Paper: ")[0] + "." for line in claim_lines(study_a).splitlines()]
    lines.append(baselines_line(gate))
    lines.append(
        f"- Trained on {'; '.join(machines) or 'a machine not recorded'}: {hours_minutes(job_seconds)} of jobs "
        "(each job's last run, summed; a rerun of one stage counts only that stage anew)."
    )
    return "\n".join(lines) + "\n"


def baselines_line(gate: dict) -> str:
    """The cheap references beside the best trained network, in figures, not as a pass or fail."""
    if gate.get("run") is None:
        return "- Baselines: no VGG-16 run finished, so nothing was compared with them."
    probe = "" if gate.get("probe_accuracy") is None else f" and the linear probe's {gate['probe_accuracy']:.3f}"
    return (
        f"- Baselines: the best VGG-16 run by validation ({gate['run']}) scores test accuracy "
        f"{gate['accuracy']:.3f}, against the majority class's {gate['baseline_accuracy']:.3f}{probe}."
    )


def _read(path: Path, reader):
    try:
        return reader(path)
    except (OSError, ValueError, KeyError) as err:
        raise LayerscopeError(f"cannot read {path}: {err}: is the run finished?") from err


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def splice(page: str, block: str, source: str, name: str = RESULTS) -> str:
    """``page`` with the text between its ``name`` markers replaced by ``block``, from ``source``.

    Raises:
        LayerscopeError: the page has no such markers, or more than one pair.
    """
    found, end = list(_begin(name).finditer(page)), _end(name)
    if len(found) != 1 or page.count(end) != 1:
        raise LayerscopeError(f"the page needs exactly one '<!-- {name}: ... -->' ... '{end.strip()}' pair")
    start, stop = found[0].start(), page.index(end)
    return page[:start] + f"<!-- {name}: {source} sha256={_digest(block)} -->\n" + block + page[stop:]


def pasted_block(page: str, name: str = RESULTS) -> tuple[str, str, bool]:
    """(source, pasted text, unedited) of the page's ``name`` block.

    Raises:
        LayerscopeError: the page has no such block.
    """
    found, end = _begin(name).search(page), _end(name)
    if found is None or end not in page[found.end() :]:
        raise LayerscopeError(f"no {name} block between '<!-- {name}: ... -->' markers")
    text = page[found.end() : page.index(end, found.end())]
    return found["source"], text, _digest(text) == found["sha"]


def main(readme_path: str, results_path: str, run_dir: str) -> None:
    """Paste a finished run's full block into ``results_path`` and its short block into ``readme_path``."""
    block = Path(run_dir) / "tables" / "readme_results.md"
    if not block.is_file():
        raise LayerscopeError(f"{block} not found: run the pipeline first (make reproduce)")
    findings = findings_block(run_dir)
    for path, text, source, name in (
        (Path(results_path), block.read_text(), block.as_posix(), RESULTS),
        (Path(readme_path), findings, Path(run_dir).as_posix(), FINDINGS),
    ):
        write_text(path, splice(path.read_text(), text, source, name))


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    except (LayerscopeError, TypeError) as err:
        sys.exit(f"readme-results: {err}")
