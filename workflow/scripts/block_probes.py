"""The linear probe on every VGG-16 block's pooled features (see layerscope.train.probe.block_probe_table)."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.core.atomic import atomic_path
    from layerscope.train.probe import block_probe_table

    table = block_probe_table(
        Path(smk.input.manifest).parent, smk.params.weights, smk.params.class_weight, smk.params.seed
    )
    with atomic_path(smk.output.table) as tmp:
        table.to_csv(tmp, index=False)
    write_job_provenance(smk, seed=smk.params.seed)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
