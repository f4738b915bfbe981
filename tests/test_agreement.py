"""Agreement of two runs of one config: cell means inside each other's intervals, verdicts unchanged."""

import pandas as pd
import pytest
from agreement import cell_agreement, flips, verdict_agreement

from layerscope.core.errors import LayerscopeError


def run(run_id: str, right: int, n: int = 200) -> dict:
    predictions = pd.DataFrame(
        {
            "path": [f"img{i}.png" for i in range(n)],
            "true": "crack",
            "predicted": ["crack" if i < right else "pit" for i in range(n)],
        }
    )
    return {"run_id": run_id, "test": {"accuracy": right / n}, "test_predictions": predictions}


def sweep(depth3: tuple[int, ...], depth4: tuple[int, ...]) -> dict:
    runs = {}
    for k, counts in ((3, depth3), (4, depth4)):
        for seed, right in zip(("", "-seed43", "-seed44"), counts, strict=False):
            run_id = f"vgg16-freeze{k}-momentum{seed}"
            runs[run_id] = run(run_id, right)
    return runs


def test_close_cells_agree_and_a_moved_cell_does_not():
    a = sweep((140, 144, 136), (120, 124))
    b = sweep((142, 138, 140), (150,))  # depth 4 moved from 0.61 to 0.75
    cells = cell_agreement(a, b)
    assert list(cells.index) == ["vgg16-freeze3-momentum", "vgg16-freeze4-momentum"]
    depth3, depth4 = cells.loc["vgg16-freeze3-momentum"], cells.loc["vgg16-freeze4-momentum"]
    assert (depth3["seeds_a"], depth3["mean_a"], depth3["mean_b"]) == (3, 0.70, 0.70)
    assert bool(depth3["agree"])
    assert (depth4["seeds_a"], depth4["seeds_b"], depth4["mean_a"], depth4["mean_b"]) == (2, 1, 0.61, 0.75)
    assert not depth4["a_in_b"] and not depth4["b_in_a"] and not depth4["agree"]


def test_a_cell_unfinished_on_one_side_is_left_out():
    a = sweep((140,), (120,))
    b = {key: value for key, value in sweep((140,), (120,)).items() if "freeze4" not in key}
    b["vgg16-freeze4-momentum"] = None
    assert list(cell_agreement(a, b).index) == ["vgg16-freeze3-momentum"]


@pytest.mark.parametrize(
    ("a", "b", "flip"),
    [
        ("holds", "holds", False),
        ("holds", "not shown (same direction)", True),
        ("not shown (same direction)", "not shown (opposite direction)", False),
        ("opposite", "holds", True),
        ("not measured", "not measured", False),
        ("not measured", "holds", False),
    ],
)
def test_flip_needs_significance_on_one_side(a, b, flip):
    assert flips(a, b) is flip


def test_verdicts_side_by_side(tmp_path):
    for side, verdict in (("a", "holds"), ("b", "not shown (same direction)")):
        folder = tmp_path / side
        folder.mkdir()
        pd.DataFrame(
            {
                "claim": ["Fine-tuning beats transfer", "Transfer beats LeNet-5"],
                "p_value": [0.01, 0.4],
                "verdict": [verdict, "not measured"],
            }
        ).to_csv(folder / "comparison_paper.csv", index=False)
        with open(folder / "comparison_paper.csv", "a") as table:  # written by write_table: NaN reads "missing"
            table.write("Absolute accuracy on elpv,missing,reference only\n")
        for stem in ("table8_tests", "table9_tests"):
            pd.DataFrame({"comparison": ["x"], "p_value": [0.5], "verdict": ["tie"]}).to_csv(
                folder / f"{stem}.csv", index=False
            )
    table = verdict_agreement(tmp_path / "a", tmp_path / "b")
    row = table.loc[("comparison_paper", "Fine-tuning beats transfer")]
    assert (row["verdict_a"], row["p_a"], row["p_b"], bool(row["same"]), bool(row["flip"])) == (
        "holds",
        0.01,
        0.01,
        False,
        True,
    )
    assert table["flip"].sum() == 1 and len(table) == 4  # the claim neither side measured is left out
    assert table.loc[("comparison_paper", "Absolute accuracy on elpv"), "same"]
    (tmp_path / "b" / "table9_tests.csv").unlink()
    with pytest.raises(LayerscopeError, match=r"b/table9_tests\.csv not found"):
        verdict_agreement(tmp_path / "a", tmp_path / "b")
