"""The sanity gate: does the best VGG-16 run beat the cheap baselines it must beat?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from layerscope.results.selection import best_by_val, metric, primary_runs
from layerscope.train.runs import parse_name


def sanity_gate(runs: Mapping[str, dict | None], probe: dict | None = None) -> dict:
    """Does the best VGG-16 run (by val accuracy) beat the majority class AND the linear probe on test?

    The run is picked as Table 8 picks its rows (:func:`best_by_val` over seed means, a
    cell with a collapsed or unconverged seed only when no healthy one has finished), so
    the gate and the tables name the same run. Both accuracy and weighted F1 must be
    strictly higher than each baseline's; with no finished VGG-16 run the gate fails.
    Without a probe result only the majority class is checked (and ``probe_accuracy`` is None).

    Args:
        runs: runs by id, as :func:`load_runs` returns them.
        probe: the linear probe's metrics (:func:`load_probe`), or None.

    Returns:
        The gate as written to ``sanity_gate.json``: the chosen run, its and the baselines'
        figures, ``beats_majority``, ``beats_probe`` and ``passed``.
    """
    vgg = {run_id: run for run_id, run in primary_runs(runs).items() if parse_name(run_id)[0] != "lenet5"}
    chosen = best_by_val(vgg, runs)
    gate = {
        "run": chosen,
        "val_accuracy": None,
        "accuracy": None,
        "f1_weighted": None,
        "baseline_class_index": None,
        "baseline_accuracy": None,
        "baseline_f1_weighted": None,
        "probe_accuracy": None,
        "probe_f1_weighted": None,
        "beats_majority": False,
        "beats_probe": False,
        "passed": False,
    }
    if chosen is None:
        return gate
    run, baseline = vgg[chosen], vgg[chosen]["majority_baseline"]
    accuracy, f1 = metric(run, "test"), metric(run, "test", "f1_weighted")
    gate.update(
        {
            "val_accuracy": metric(run, "val"),
            "accuracy": accuracy,
            "f1_weighted": f1,
            "baseline_class_index": baseline["class_index"],
            "baseline_accuracy": baseline["accuracy"],
            "baseline_f1_weighted": baseline["f1_weighted"],
            "beats_majority": bool(accuracy > baseline["accuracy"] and f1 > baseline["f1_weighted"]),
        }
    )
    if probe is not None:
        gate.update(
            {
                "probe_accuracy": metric(probe, "test"),
                "probe_f1_weighted": metric(probe, "test", "f1_weighted"),
            }
        )
        gate["beats_probe"] = bool(accuracy > gate["probe_accuracy"] and f1 > gate["probe_f1_weighted"])
    gate["passed"] = gate["beats_majority"] and (probe is None or gate["beats_probe"])
    return gate


def gate_line(gate: dict, classes: Sequence[str]) -> str:
    """The gate in one sentence for the summary: the verdict, the figures, what a failure means."""
    if gate["run"] is None:
        return "FAILED: no VGG-16 run has finished, so nothing can be compared with the baselines."
    verdict_word = "PASSED" if gate["passed"] else "FAILED"
    line = (
        f"{verdict_word}: {gate['run']} (best VGG-16 run by validation accuracy) scores test accuracy "
        f"{gate['accuracy']:.3f} and weighted F1 {gate['f1_weighted']:.3f}; the majority class (always "
        f"'{classes[gate['baseline_class_index']]}') scores {gate['baseline_accuracy']:.3f} and "
        f"{gate['baseline_f1_weighted']:.3f}"
    )
    if gate["probe_accuracy"] is not None:
        line += (
            f", the linear probe on frozen VGG-16 features {gate['probe_accuracy']:.3f} and "
            f"{gate['probe_f1_weighted']:.3f}"
        )
    line += "."
    if not gate["beats_majority"]:
        line += " The trained network does not beat always guessing the most frequent class: training failed."
    elif gate["probe_accuracy"] is not None and not gate["beats_probe"]:
        line += (
            " It does not beat a logistic regression on the pretrained network's features, so training "
            "added nothing to what the pretrained features already give: do not read the grid as evidence."
        )
    return line
