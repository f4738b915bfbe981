"""Grad-CAM per block, CAM and LIME for selected test images of one run."""

from pathlib import Path

import numpy as np

from layerscope.scripting import run_job


def main(smk):
    from layerscope.models import load_model
    import pandas as pd

    from layerscope.atomic import atomic_path
    from layerscope.data.prepare import load_classes, load_split
    from layerscope.explain_figures import plot_explanations
    from layerscope.explanations import explain_run, select_images
    from layerscope.provenance import write_provenance
    from layerscope.training import enable_determinism

    settings, seed = smk.params.explain, smk.params.seed
    enable_determinism(seed)
    data_dir = Path(smk.input.manifest).parent
    classes = load_classes(data_dir)
    images, labels = load_split(data_dir, "test")
    predictions = pd.read_csv(smk.input.predictions, dtype={"path": str, "true": str, "predicted": str})
    chosen = select_images(predictions, classes, settings["images_per_class"], seed)
    model = load_model(smk.input.model)
    cam_model = load_model(smk.input.cam_model[0]) if smk.input.cam_model else None
    maps = explain_run(model, images[chosen], settings, seed, cam_model=cam_model)
    maps.update(indices=chosen, true=labels[chosen], paths=predictions.loc[chosen, "path"].to_numpy(str))
    with atomic_path(smk.output.maps) as tmp:
        np.savez_compressed(tmp, **maps)
    plot_explanations(images[chosen], maps, labels[chosen], classes, smk.wildcards.run, smk.output.figure)
    write_provenance(
        smk.output.provenance,
        rule=smk.rule,
        experiment=smk.config["experiment"],
        config=smk.config,
        seed=seed,
        inputs=[smk.input.model, smk.input.predictions, *smk.input.cam_model],
        outputs=[smk.output.maps, smk.output.figure],
        extra={"run": smk.wildcards.run, "images": chosen.tolist()},
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
