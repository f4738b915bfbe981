"""Would the explanations (and weight changes) have chosen the freeze depth?"""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.results.recommendation import write_recommendation
    from layerscope.results.run_files import load_runs
    from layerscope.train.runs import split_replicate

    runs_dir = Path(smk.input.metrics[0]).parents[1] if smk.input.metrics else None
    runs = load_runs(runs_dir, smk.params.runs, smk.params.seed) if runs_dir else {}
    stores = {split_replicate(Path(p).parent.name)[1]: p for p in smk.input.finetune_stores}
    norms = {split_replicate(Path(p).stem)[1]: p for p in smk.input.gradient_norms}
    stem = Path(smk.output.csv).with_suffix("")
    verdict = write_recommendation(
        smk.input.quality, stores, runs, stem, smk.output.figure, smk.input.probes, norms, smk.input.map_shapes
    )
    write_job_provenance(
        smk,
        extra={"recommended": verdict["recommended"], "best": verdict["best"]},
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
