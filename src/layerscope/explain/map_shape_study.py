"""The map_shape rule: each block's Grad-CAM of one run's seeds on the explained images, measured.

Every seed of the run (the plain run and its ``-seed<s>`` replicates) explains the same
test images the explain rule chose, each at its own predicted class, at the last conv
layer of every block, and the same images mirrored left to right at the same class;
:mod:`layerscope.explain.map_shape` measures how concentrated the maps are, how much the
seeds agree and whether the maps follow the mirrored image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from layerscope.core.render import write_table
from layerscope.explain.explanations import read_maps
from layerscope.explain.gradcam import GradCAM
from layerscope.explain.map_shape import map_shape_table, sharpest_sentence
from layerscope.explain.quality_study import quality_layers
from layerscope.train.models import load_model


def write_map_shape(
    model_files: Sequence[str | os.PathLike],
    maps_file: str | os.PathLike,
    test_images: np.ndarray,
    out_stem: str | os.PathLike,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Measure every block's Grad-CAM of each seed's model; write the table (csv, md, tex, html).

    Args:
        model_files: ``model.keras`` of the run, then of its seed replicates.
        maps_file: the run's ``maps.npz`` (which test images were explained).
        test_images: the test split's images.
        out_stem: path of the table without suffix.
        batch_size: images per Grad-CAM pass.

    Returns:
        :func:`layerscope.explain.map_shape.map_shape_table`'s table.
    """
    x = test_images[read_maps(maps_file)["indices"]].astype(np.float32)
    mirrored = np.ascontiguousarray(x[:, :, ::-1])
    maps_by_seed, mirrored_by_seed = {}, {}
    for path in model_files:
        model = load_model(path)
        predicted = model.predict(x, batch_size=batch_size, verbose=0).argmax(axis=1)
        explainer = GradCAM(model, quality_layers(model), batch_size=batch_size, upsample=True)
        seed = Path(path).parent.name
        maps_by_seed[seed] = explainer.explain_layers(x, predicted)
        mirrored_by_seed[seed] = explainer.explain_layers(mirrored, predicted)
    table = map_shape_table(maps_by_seed, mirrored_by_seed)
    caption = (
        f"Grad-CAM concentration (Gini index, top-10% share), stability across {len(maps_by_seed)} "
        "seed(s) and mirroring (does the map of the mirrored image mirror the map?) per block. "
        f"{sharpest_sentence(table)}"
    )
    write_table(table.set_index("block"), out_stem, caption=caption)
    return table
