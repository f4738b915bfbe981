"""Gradient-ascent feature maps of one run (study B): stages x channels, and invariance."""

from pathlib import Path

import numpy as np

from layerscope.scripting import run_job


def main(smk):
    from layerscope.models import load_model
    import pandas as pd

    from layerscope.atomic import atomic_path
    from layerscope.data.prepare import load_classes, load_split
    from layerscope.explain import mean_pairwise_correlation
    from layerscope.explain_figures import plot_feature_maps, plot_invariance
    from layerscope.explanations import ascent_deltas, choose_channels, feature_map_layers

    cfg = smk.params.feature_maps
    data_dir = Path(smk.input.manifest).parent
    classes = load_classes(data_dir)
    images, labels = load_split(data_dir, "test")
    model = load_model(smk.input.model)
    stages = feature_map_layers(model, cfg["layers"])
    image = images[:1]
    panels, arrays = {}, {}
    for stage, layer in stages.items():
        channels = choose_channels(model, layer, images, cfg["channels"], cfg["count"])
        deltas = ascent_deltas(model, layer, image, channels, cfg["steps"], cfg["alpha"])[:, 0]
        panels[stage] = (layer, channels, deltas)
        arrays[f"{stage}/channels"], arrays[f"{stage}/deltas"] = channels, deltas
    with atomic_path(smk.output.maps) as tmp:
        np.savez_compressed(tmp, **arrays)
    plot_feature_maps(panels, image[0], smk.wildcards.run, smk.output.figure)

    label = int(np.bincount(labels).argmax())
    same_class = images[labels == label][: cfg["invariance_images"]]
    first, last = stages[next(iter(stages))], stages[list(stages)[-1]]
    deltas = {}
    for layer in (first, last):
        channel = choose_channels(model, layer, same_class, cfg["channels"], 1)[:1]
        deltas[layer] = ascent_deltas(model, layer, same_class, channel, cfg["steps"], cfg["alpha"])[0]
    correlations = mean_pairwise_correlation(deltas)
    with atomic_path(smk.output.invariance_table) as tmp:
        pd.DataFrame({"layer": list(correlations), "class": classes[label], "images": len(same_class),
                      "mean_pairwise_correlation": list(correlations.values())}).to_csv(tmp, index=False)
    plot_invariance(same_class, deltas, correlations, classes[label], smk.wildcards.run, smk.output.invariance)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
