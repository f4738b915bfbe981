"""Would the explanations (and weight changes) have chosen the freeze depth?"""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.results.recommendation import write_recommendation
    from layerscope.results.run_files import load_runs

    runs = load_runs(Path(smk.input.metrics[0]).parents[1], smk.params.runs) if smk.input.metrics else {}
    store = smk.input.finetune_store[0] if smk.input.finetune_store else None
    stem = Path(smk.output.csv).with_suffix("")
    gradient_norms = smk.input.gradient_norms[0] if smk.input.gradient_norms else None
    verdict = write_recommendation(
        smk.input.quality, store, runs, stem, smk.output.figure, smk.input.probes, gradient_norms, smk.input.map_shapes
    )
    write_job_provenance(
        smk,
        extra={"recommended": verdict["recommended"], "best": verdict["best"]},
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
