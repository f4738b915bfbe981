import numpy as np
import pandas as pd
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.data.splits import assign_splits, check_no_leakage, split_sizes


def table(counts: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = [
        (f"{label}/{group}/{i}", label, group, f"{label}-{group}-{i}")
        for (label, group), n in counts.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=["path", "label", "group", "sha256"])


COUNTS = {("a", "mono"): 60, ("a", "poly"): 140, ("b", "mono"): 21, ("b", "poly"): 19, ("c", "poly"): 13}


def test_split_sizes_round_half_up():
    assert split_sizes(200, 0.25, 0.1) == (135, 15, 50)
    assert split_sizes(13, 0.25, 0.1) == (9, 1, 3)  # 3.25 -> 3 test, 1.0 -> 1 val
    assert split_sizes(6, 0.25, 0.1) == (4, 0, 2)  # 1.5 rounds half up to 2


def test_each_class_gets_exact_proportions():
    t = table(COUNTS)
    t["split"] = assign_splits(t, 0.25, 0.1, seed=1)
    for label, n in t.groupby("label").size().items():
        n_train, n_val, n_test = split_sizes(n, 0.25, 0.1)
        got = t[t["label"] == label]["split"].value_counts()
        assert (got.get("train", 0), got.get("val", 0), got.get("test", 0)) == (n_train, n_val, n_test)


def test_groups_are_spread_in_proportion_within_a_class():
    t = table(COUNTS)
    t["split"] = assign_splits(t, 0.25, 0.1, seed=3)
    a = t[t["label"] == "a"]
    test_share = a[a["split"] == "test"]["group"].value_counts()
    # 50 test images of class a drawn from 60 mono / 140 poly: 15 / 35 expected
    assert abs(test_share["mono"] - 15) <= 1 and abs(test_share["poly"] - 35) <= 1


def test_split_is_seeded():
    t = table(COUNTS)
    first = assign_splits(t, 0.25, 0.1, seed=5)
    assert first.equals(assign_splits(t, 0.25, 0.1, seed=5))
    assert not first.equals(assign_splits(t, 0.25, 0.1, seed=6))


def test_identical_files_share_a_split():
    t = table({("a", "g"): 30, ("b", "g"): 30})
    t.loc[5, "sha256"] = t.loc[17, "sha256"]  # same content twice within class a
    split = assign_splits(t, 0.25, 0.1, seed=0)
    assert split[5] == split[17]
    check_no_leakage(t.assign(split=split))


def test_too_few_images_names_the_class():
    t = table({("a", "g"): 30, ("rare", "g"): 2})
    with pytest.raises(LayerscopeError, match="class 'rare' has only 2"):
        assign_splits(t, 0.25, 0.1, seed=0)


def test_identical_files_with_different_labels_are_refused():
    t = table({("a", "g"): 10, ("b", "g"): 10})
    t.loc[12, "sha256"] = t.loc[3, "sha256"]
    with pytest.raises(LayerscopeError, match="different labels"):
        assign_splits(t, 0.25, 0.1, seed=0)


def test_leakage_is_refused_and_names_the_files():
    t = table({("a", "g"): 4}).assign(split=["train", "val", "test", "test"])
    t.loc[3, "sha256"] = t.loc[0, "sha256"]
    with pytest.raises(LayerscopeError, match=r"a/g/0 \(train\).*a/g/3 \(test\)"):
        check_no_leakage(t)


def test_empty_split_is_refused():
    t = table({("a", "g"): 4}).assign(split=["train", "train", "test", "test"])
    with pytest.raises(LayerscopeError, match="'val' split is empty"):
        check_no_leakage(t)


def test_splits_of_a_real_sized_table_are_disjoint():
    t = table(COUNTS)
    t["split"] = assign_splits(t, 0.3, 0.2, seed=11)
    sets = [set(t[t["split"] == s]["sha256"]) for s in ("train", "val", "test")]
    assert sum(map(len, sets)) == len(t)
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert np.isclose((t["split"] == "test").mean(), 0.3, atol=0.01)
