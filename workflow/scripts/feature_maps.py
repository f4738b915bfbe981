"""Gradient-ascent feature maps of one run (study B): stages x channels, and invariance on x*."""

from pathlib import Path

import numpy as np

from layerscope.scripting import run_job


def main(smk):
    from layerscope.models import load_model

    from layerscope.atomic import atomic_path, write_text
    from layerscope.data.prepare import load_classes, load_split
    from layerscope.explain_figures import plot_feature_maps, plot_invariance
    from layerscope.explanations import feature_map_study, invariance_study

    cfg = smk.params.feature_maps
    data_dir = Path(smk.input.manifest).parent
    classes = load_classes(data_dir)
    images, labels = load_split(data_dir, "test")
    model = load_model(smk.input.model)

    stages, gains = feature_map_study(model, images, labels, cfg)
    with atomic_path(smk.output.maps) as tmp:
        np.savez_compressed(tmp, **{f"{stage}/{key}": value for stage, v in stages.items()
                                    for key, value in v.items() if key != "layer"})
    with atomic_path(smk.output.gains) as tmp:
        gains.to_csv(tmp, index=False)
    plot_feature_maps(stages, smk.wildcards.run, smk.output.figure, cfg["steps"], cfg["alpha"])

    label = int(np.bincount(labels).argmax())
    same_class = images[labels == label][: cfg["invariance_images"]]
    table, optimised, verdict = invariance_study(model, same_class, cfg)
    table.insert(2, "class", classes[label])
    with atomic_path(smk.output.invariance_table) as tmp:
        table.to_csv(tmp, index=False)
    write_text(smk.output.verdict, verdict + "\n")
    shown = [layer for layer in dict.fromkeys(v["layer"] for v in stages.values()) if layer in optimised]
    plot_invariance(same_class, optimised, table, verdict, classes[label], smk.wildcards.run,
                    smk.output.invariance, shown=shown)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
