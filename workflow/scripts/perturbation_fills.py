"""Which fill moves one run's predictions least when superpixels are hidden: the fill LIME and deletion use."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.data.prepare import load_classes, load_split
    from layerscope.explain.fill_study import FillFiles, write_fill_study
    from layerscope.train.fit import enable_determinism
    from layerscope.train.models import load_model

    enable_determinism(smk.params.seed)
    data_dir = Path(smk.input.manifest).parent
    images, labels = load_split(data_dir, "test")
    files = FillFiles(
        table=smk.output.table, summary=smk.output.summary, figure=smk.output.figure, choice=smk.output.choice
    )
    fill = write_fill_study(
        load_model(smk.input.model),
        images,
        labels,
        load_classes(data_dir),
        smk.params.fills,
        smk.params.segmentation,
        smk.params.seed,
        smk.wildcards.run,
        files,
        batch_size=smk.params.batch_size,
    )
    write_job_provenance(smk, seed=smk.params.seed, extra={"run": smk.wildcards.run, "fill": fill})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
