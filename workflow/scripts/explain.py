"""Grad-CAM per block, CAM and LIME for selected test images of one run."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    import pandas as pd

    from layerscope.data.prepare import load_classes, load_split
    from layerscope.explain.explanations import write_explanations
    from layerscope.explain.fills import read_fill_choice
    from layerscope.train.fit import enable_determinism
    from layerscope.train.models import load_model

    settings, seed = smk.params.explain, smk.params.seed
    enable_determinism(seed)
    data_dir = Path(smk.input.manifest).parent
    images, labels = load_split(data_dir, "test")
    predictions = pd.read_csv(smk.input.predictions, dtype={"path": str, "true": str, "predicted": str})
    model = load_model(smk.input.model)
    cam_model = load_model(smk.input.cam_model[0]) if smk.input.cam_model else None
    chosen, lime_fill = write_explanations(
        model,
        images,
        labels,
        predictions,
        load_classes(data_dir),
        settings,
        seed,
        smk.wildcards.run,
        smk.output.maps,
        smk.output.figure,
        cam_model=cam_model,
        measured_fill=read_fill_choice(smk.input.fills[0]) if smk.input.fills else None,
    )
    write_job_provenance(
        smk,
        seed=seed,
        extra={"run": smk.wildcards.run, "images": chosen.tolist(), "lime_hide": lime_fill.note},
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
