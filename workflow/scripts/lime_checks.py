"""Study A's judgement of LIME on one run: seed-to-seed stability and agreement with CAM and Grad-CAM."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.data.prepare import load_split
    from layerscope.explain.explanations import read_maps
    from layerscope.explain.fills import read_fill_choice, resolve_fill
    from layerscope.explain.lime_checks import write_lime_checks
    from layerscope.train.fit import enable_determinism
    from layerscope.train.models import load_model

    enable_determinism(smk.params.seed)
    images, _ = load_split(Path(smk.input.manifest).parent, "test")
    measured = read_fill_choice(smk.input.fills[0]) if smk.input.fills else None
    lime_fill = resolve_fill(smk.params.lime["hide"], measured, "explain.lime.hide")
    write_lime_checks(
        load_model(smk.input.model),
        images,
        read_maps(smk.input.maps),
        smk.params.checks,
        smk.params.lime,
        lime_fill,
        smk.params.seed,
        smk.wildcards.run,
        smk.output.table,
        smk.output.summary,
    )
    write_job_provenance(smk, seed=smk.params.seed, extra={"run": smk.wildcards.run, "lime_hide": lime_fill.note})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
