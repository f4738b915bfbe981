"""Animation of one run's accumulated weight change over its readings."""

from layerscope.core.scripting import run_job


def main(smk):
    from layerscope.weights.render3d import render_animation

    render_animation(smk.input.store, smk.output[0], log_scale=smk.params.log_scale)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
