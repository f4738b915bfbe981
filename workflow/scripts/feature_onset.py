"""Feature onset (study B): when each stage's feature map settles, from the training checkpoints."""

from pathlib import Path

from layerscope.scripting import run_job


def main(smk):
    from layerscope.models import load_model
    import pandas as pd

    from layerscope.atomic import atomic_path
    from layerscope.data.prepare import load_split
    from layerscope.explain_figures import plot_onset
    from layerscope.explanations import onset_study

    cfg = smk.params.feature_maps
    images, _ = load_split(Path(smk.input.manifest).parent, "test")
    model = load_model(smk.input.model)
    checkpoints = sorted(Path(smk.input.checkpoints).glob("step_*.weights.h5"))
    curves, onsets = onset_study(model, checkpoints, images[:1], cfg, smk.params.threshold)
    for frame, path in ((curves, smk.output.curves), (onsets, smk.output.table)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    plot_onset(curves, onsets, smk.params.threshold, smk.wildcards.run, smk.output.figure)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
