"""Gradient-ascent feature maps of one run (study B): stages x channels, and invariance on x*."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.data.prepare import load_classes, load_split
    from layerscope.explain.feature_map_study import FeatureMapFiles, write_feature_maps
    from layerscope.train.models import load_model

    data_dir = Path(smk.input.manifest).parent
    images, labels = load_split(data_dir, "test")
    files = FeatureMapFiles(
        maps=smk.output.maps,
        gains=smk.output.gains,
        channels=smk.output.channels,
        figure=smk.output.figure,
        invariance_table=smk.output.invariance_table,
        verdict=smk.output.verdict,
        invariance=smk.output.invariance,
    )
    model = load_model(smk.input.model)
    record = write_feature_maps(
        model,
        images,
        labels,
        load_classes(data_dir),
        smk.params.feature_maps,
        smk.wildcards.run,
        files,
        smk.params.seed,
    )
    write_job_provenance(smk, extra={"run": smk.wildcards.run, **record})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
