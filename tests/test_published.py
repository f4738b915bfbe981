"""The published figures in results/published.py, each against the value its source prints.

Sources, as /work/shared/paper-notes.md (the project's reading of the papers) and the
module's own comments give them:
- study A (Kim, master's thesis, SNU; no public DOI): the summary table (Table 8) and the
  freeze-depth table (Table 9). The notes quote both tables' numbers but give no page
  numbers, so none are cited here.
- elpv: Deitsch et al. 2019 (Solar Energy 185, 455-468; abstract and Sec. 5) and Comput.
  Intell. Neurosci. 2023 (article 2663150), as cited in published.py's comment; the notes
  do not quote these figures, so they are checked against that comment and its arithmetic.

The expected values are typed from those sources, never computed from the module.
"""

from layerscope.results import published

# Study A, Table 8 (paper-notes: "Summary table (train / val / test accuracy)")
TABLE_8 = {
    "Fine-tuning": (0.998, 0.917, 0.792),
    "Transfer": (0.999, 0.919, 0.778),  # "transfer (block 3)"
    "Fixed feature extraction": (0.850, 0.814, 0.653),  # the text says val .813 / test .625; the table wins
    "Random weights": (0.996, 0.908, 0.569),
    "LeNet-5": (0.995, 0.816, 0.625),
}
# Study A, Table 9 (paper-notes: "Test accuracy table (rows k, columns SGD / Momentum / NAG)")
TABLE_9 = {
    5: (0.639, 0.653, 0.625),
    4: (0.639, 0.722, 0.653),
    3: (0.736, 0.778, 0.778),
    2: (0.764, 0.708, 0.764),
    1: (0.694, 0.736, 0.764),
}


def test_table_8_as_printed():
    assert published.PAPER_SUMMARY == TABLE_8


def test_table_9_as_printed():
    grid = {k: (row["sgd"], row["momentum"], row["nag"]) for k, row in published.PAPER_FREEZE_GRID.items()}
    assert grid == TABLE_9
    assert all(list(row) == ["sgd", "momentum", "nag"] for row in published.PAPER_FREEZE_GRID.values())


def test_elpv_references_as_cited():
    assert published.ELPV_PUBLISHED == (
        ("unstated", 0.8842, "Deitsch et al. 2019, CNN (VGG-19, 300 px); 'average accuracy', task not stated"),
        ("unstated", 0.8244, "Deitsch et al. 2019, SVM; 'average accuracy', task not stated"),
        ("four-class", 0.835, "Comput. Intell. Neurosci. 2023 (article 2663150), light CNN on a CPU; four classes"),
    )
    # the comment's reason for "unstated": the printed percentages are these fractions, not k / 656
    assert (round(527 / 596, 6), round(737 / 894, 6)) == (0.884228, 0.824385)  # 88.4228% and 82.4385%
    assert not any(round(k / 656, 4) in (0.8842, 0.8244) for k in range(657))


def test_claim_strings_by_hand():
    assert published.paper_pair("Fine-tuning", "Transfer") == "0.792 vs 0.778"
    assert published.paper_pair("Transfer", "Random weights") == "0.778 vs 0.569"
    # Table 9, momentum and NAG each against SGD in its row: k=5 win/loss, k=4 win/win,
    # k=3 win/win, k=2 loss/tie, k=1 win/win
    assert published.paper_momentum_record() == "7 wins, 2 losses, 1 tie of 10 cells"
    # the best cell is 0.778, at k=3, reached by Momentum and NAG
    assert published.paper_best_depth() == (3, "3 frozen blocks best (0.778, Momentum/NAG)")
