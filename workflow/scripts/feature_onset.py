"""Feature onset (study B): when each stage's feature maps settle, from the run's log-spaced checkpoints."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.core.atomic import atomic_path
    from layerscope.data.prepare import load_split
    from layerscope.explain.onset_study import measure_onset, plot_onset
    from layerscope.train.models import load_model

    onset = smk.params.onset
    images, labels = load_split(Path(smk.input.manifest).parent, "test")
    model = load_model(smk.input.model)
    curves, table = measure_onset(model, smk.input.checkpoints, images, labels, smk.params.ascent, onset)
    for frame, path in ((curves, smk.output.curves), (table, smk.output.table)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    plot_onset(curves, table, onset["threshold"], smk.wildcards.run, smk.output.figure)
    write_job_provenance(smk, extra={"run": smk.wildcards.run})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
