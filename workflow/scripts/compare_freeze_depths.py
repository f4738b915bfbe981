"""Accumulated and net weight change of the freeze-depth runs side by side, one colour scale each."""

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.weights.render3d import render_comparison

    stores = list(smk.input.stores)
    render_comparison(stores, smk.output.accumulated, log_scale=smk.params.log_scale, mode="accumulated")
    render_comparison(stores, smk.output.net, log_scale=smk.params.log_scale, mode="net")
    write_job_provenance(smk)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
