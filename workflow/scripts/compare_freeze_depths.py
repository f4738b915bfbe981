"""Accumulated weight change of the freeze-depth runs side by side, one colour scale."""

from layerscope.scripting import run_job


def main(smk):
    from layerscope.render3d import render_comparison

    render_comparison(list(smk.input.stores), smk.output[0], log_scale=smk.params.log_scale)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
