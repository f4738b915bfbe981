"""Animation of one run's accumulated weight change over its readings."""

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.weights.render3d import render_animation

    render_animation(smk.input.store, smk.output.animation, log_scale=smk.params.log_scale)
    write_job_provenance(smk, extra={"run": smk.wildcards.run})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
