"""Explanation quality of one run: deletion / insertion, randomisation and random-logit checks per method."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.data.prepare import load_split
    from layerscope.explain.explanations import read_maps
    from layerscope.explain.fills import read_fill_choice
    from layerscope.explain.quality_study import QualityFiles, write_quality
    from layerscope.train.fit import enable_determinism
    from layerscope.train.models import load_model

    enable_determinism(smk.params.seed)
    images, _ = load_split(Path(smk.input.manifest).parent, "test")
    files = QualityFiles(
        table=smk.output.table,
        curves=smk.output.curves,
        randomisation=smk.output.randomisation,
        summary=smk.output.summary,
        latex=smk.output.latex,
        figure=smk.output.figure,
    )
    cam_model = load_model(smk.input.cam_model[0]) if smk.input.cam_model else None
    result = write_quality(
        load_model(smk.input.model),
        images,
        read_maps(smk.input.maps),
        smk.params.quality,
        smk.params.lime,
        smk.params.seed,
        smk.wildcards.run,
        files,
        cam_model=cam_model,
        cam_run=smk.params.cam_run,
        batch_size=smk.params.batch_size,
        measured_fill=read_fill_choice(smk.input.fills[0]) if smk.input.fills else None,
    )
    fills = {use: chosen.note for use, chosen in result.fills.items()}
    write_job_provenance(smk, seed=smk.params.seed, extra={"run": smk.wildcards.run, "fills": fills})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
