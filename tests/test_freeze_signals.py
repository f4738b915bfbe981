"""Every freeze-depth signal and trivial rule scored over made-up sweeps."""

import pandas as pd
import pytest

from layerscope.results.freeze_signals import (
    BASELINE,
    FAITHFULNESS,
    GRADIENT_NORM,
    MEAN_RANK,
    PROBE,
    WEIGHT_CHANGE,
    median_rule_depths,
    ranking,
    ranking_sentence,
    reachable_depths,
    signal_scores,
    sweeps_of,
)
from layerscope.results.model_selection import Sweep


def run(val: float, test: float) -> dict:
    return {"val": {"accuracy": val}, "test": {"accuracy": test}}


def test_sweeps_are_per_optimizer_and_seed_with_two_depths_or_more():
    runs = {
        "vgg16-freeze3-momentum": run(0.70, 0.68),
        "vgg16-freeze4-momentum": run(0.75, 0.74),
        "vgg16-freeze3-momentum-seed43": run(0.80, 0.78),
        "vgg16-freeze4-momentum-seed43": run(0.70, 0.70),
        "vgg16-freeze3-sgd": run(0.6, 0.6),  # one depth only: no sweep
        "vgg16-freeze4-sgd": None,
        "vgg16-finetune": run(0.9, 0.9),
    }
    sweeps = sweeps_of(runs)
    assert [s.name for s in sweeps] == ["momentum, first seed", "momentum, seed 43"]
    assert sweeps[1].val == {3: 0.80, 4: 0.70} and sweeps[1].test == {3: 0.78, 4: 0.70}


def test_signals_from_the_block_table_with_ranks_turned_into_scores():
    blocks = pd.DataFrame(
        {
            "frozen_blocks": [1, 2, 3, 4, 5],
            "faithfulness": [None, None, 0.3, 0.5, 0.1],
            "rank_weight_change": [None, None, 1.0, 2.0, 3.0],
            "mean_rank": [None, None, 2.0, 1.5, 2.5],
            "probe_val_accuracy": [0.6, 0.65, 0.7, 0.72, 0.71],
            "rank_rgn": [None] * 5,
        }
    )
    signals = signal_scores(blocks)
    assert signals["Grad-CAM faithfulness at block k"] == {3: 0.3, 4: 0.5, 5: 0.1}
    assert signals["weight change in fine-tuning (blocks below the median frozen)"] == {3: -1.0, 4: -2.0, 5: -3.0}
    assert len(signals) == 4  # the unmeasured RGN is left out


def test_ranking_puts_signals_beside_the_trivial_rules():
    sweeps = [
        Sweep("a", val={3: 0.70, 4: 0.75, 5: 0.72}, test={3: 0.68, 4: 0.74, 5: 0.71}),
        Sweep("b", val={3: 0.80, 4: 0.70, 5: 0.60}, test={3: 0.78, 4: 0.70, 5: 0.65}),
    ]
    table = ranking({None: {"oracle-ish": {3: 0.2, 4: 0.9, 5: 0.1}, "deep": {5: 1.0, 4: 0.5, 3: 0.0}}}, sweeps, 3)
    rows = table.set_index("signal")
    # oracle-ish picks 4: regrets 0 and 0.08; always 3: 0.06 and 0; deepest (5): 0.03 and 0.13
    assert rows.loc["oracle-ish", "regret"] == pytest.approx(0.04)
    assert rows.loc["always 3 frozen blocks (the study's choice)", "regret"] == pytest.approx(0.03)
    assert rows.loc["always 3 frozen blocks (the study's choice)", "hit_rate"] == 0.5
    assert rows.loc["always the deepest swept depth (5)", "regret"] == pytest.approx(0.08)
    assert rows.loc["a random swept depth (expected)", "hit_rate"] == pytest.approx(1 / 3)
    assert (table["kind"] == BASELINE).sum() == 3
    assert table["signal"].iloc[0] == "always 3 frozen blocks (the study's choice)"  # lowest regret first
    sentence = ranking_sentence(table)
    assert sentence.startswith("No signal beats the trivial rules: the best, oracle-ish, has mean regret 0.040")
    assert "0.030 and 0.50 for the best trivial rule (always 3 frozen blocks (the study's choice))" in sentence


def test_a_signal_that_beats_the_rules_is_named_with_its_margin():
    sweeps = [Sweep("a", val={3: 0.70, 4: 0.75, 5: 0.72}, test={3: 0.68, 4: 0.74, 5: 0.71})]
    table = ranking({None: {"good": {3: 0.0, 4: 1.0, 5: 0.5}}}, sweeps, 3)  # rules: 0.06 (3), 0.03 (5), 0.03 (random)
    assert ranking_sentence(table).startswith("The best signal, good, beats the trivial rules by 0.030 in regret")
    assert ranking_sentence(ranking({None: {"x": {3: 1.0}}}, [], 3)).startswith("No sweep with two or more depths")


def test_each_sweep_is_scored_with_its_own_seeds_signal():
    # two sweeps with the same accuracies; the signal read from seed 43 picks depth 4 (best), seed 42's picks 3
    accuracies = {"val": {3: 0.70, 4: 0.75, 5: 0.72}, "test": {3: 0.68, 4: 0.74, 5: 0.71}}
    sweeps = [Sweep("first seed", **accuracies), Sweep("seed 43", **accuracies, seed=43)]
    signals = {None: {"s": {3: 1.0, 4: 0.0, 5: 0.5}}, 43: {"s": {3: 0.0, 4: 1.0, 5: 0.5}}}
    row = ranking(signals, sweeps, 3).set_index("signal").loc["s"]
    assert row["hit_rate"] == 0.5 and row["regret"] == pytest.approx(0.03)  # regrets 0.06 and 0
    alone = ranking({None: signals[None]}, sweeps, 3).set_index("signal").loc["s"]  # seed 43 falls back to the first
    assert alone["hit_rate"] == 0.0 and alone["regret"] == pytest.approx(0.06)


def test_the_median_rule_never_freezes_more_than_three_of_five_blocks():
    # At most three of five distinct values lie at or below their median: depth <= 3 for any ordering.
    assert median_rule_depths() == {1, 2, 3}


def test_which_depths_each_signal_can_pick_over_the_default_sweep():
    """Over depths 3-5, the median-rule signals rank 3 first for every depth they can
    recommend (1, 2 or 3 lies closest to 3); the mean rank can reach 4 (faithfulness ranks 4
    first and 3 last: mean ranks 1.5 for 4 against 2 for 3) but never 5 (its distance rank
    is 3, so its mean is at least 2, which 3 always matches, and ties go to the shallower)."""
    swept, five = [3, 4, 5], [1, 2, 3, 4, 5]
    assert reachable_depths(WEIGHT_CHANGE, [3, 4, 5], swept) == [3]
    assert reachable_depths(GRADIENT_NORM, five, swept) == [3]
    assert reachable_depths(MEAN_RANK, [3, 4, 5], swept) == [3, 4]
    assert reachable_depths(FAITHFULNESS, five, swept) == [3, 4, 5]
    assert reachable_depths(PROBE, [4, 5], swept) == [4, 5]  # only the depths it scores
    assert reachable_depths(WEIGHT_CHANGE, five, [1, 2, 3, 4, 5]) == [1, 2, 3]


def test_the_ranking_says_which_depths_each_signal_and_rule_can_pick():
    sweeps = [Sweep("m", val={3: 0.7, 4: 0.6, 5: 0.5}, test={3: 0.7, 4: 0.6, 5: 0.5})]
    signals = {None: {WEIGHT_CHANGE: {3: -1.0, 4: -2.0, 5: -3.0}, FAITHFULNESS: {3: 0.1, 4: 0.3, 5: 0.2}}}
    can_pick = ranking(signals, sweeps, 3).set_index("signal")["can_pick"].to_dict()
    assert can_pick == {
        WEIGHT_CHANGE: "3",
        FAITHFULNESS: "3, 4, 5",
        "always 3 frozen blocks (the study's choice)": "3",
        "always the deepest swept depth (5)": "5",
        "a random swept depth (expected)": "3, 4, 5",
    }
