import numpy as np
import pandas as pd
import pytest

from layerscope.errors import LayerscopeError
from layerscope.explanations import select_images


def predictions():
    rows = [("a", "a"), ("a", "b"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("c", "a")]
    return pd.DataFrame(rows, columns=["true", "predicted"])


def test_selection_alternates_correct_and_wrong_per_class():
    p = predictions()
    chosen = select_images(p, ["a", "b", "c"], per_class=2, seed=0)
    picked = p.loc[chosen]
    a = picked[picked["true"] == "a"]
    assert len(a) == 2 and set(a["predicted"]) == {"a", "b"}  # one right, one wrong
    assert (picked[picked["true"] == "b"]["predicted"] == "b").all() and len(picked[picked["true"] == "b"]) == 2
    assert picked[picked["true"] == "c"].index.tolist() == [6]  # only one image of c exists
    assert np.array_equal(chosen, select_images(p, ["a", "b", "c"], per_class=2, seed=0))


def test_selection_of_nothing_is_an_error():
    with pytest.raises(LayerscopeError, match="no test predictions"):
        select_images(predictions(), ["x"], per_class=2, seed=0)
