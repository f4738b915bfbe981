"""Relative gradient norms at the start of fine-tuning (see layerscope.train.gradient_norms)."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.core.atomic import atomic_path
    from layerscope.train.gradient_norms import start_of_finetuning

    table = start_of_finetuning(
        Path(smk.input.model), Path(smk.input.manifest).parent, smk.params.batch_size, smk.params.seed
    )
    with atomic_path(smk.output.table) as tmp:
        table.to_csv(tmp, index=False)
    write_job_provenance(smk, seed=smk.params.seed)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
