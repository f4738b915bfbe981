"""Linear-probe baseline: logistic regression on frozen VGG-16 features (see layerscope.train.probe)."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.train.probe import run_probe

    data_dir = Path(smk.input.manifest).parent
    run_probe(
        data_dir,
        Path(smk.input.features[0]),  # block5.npy beside its .json
        Path(smk.output.metrics).parent,
        smk.params.weights,
        smk.params.class_weight,
        smk.params.seed,
        smk.params.precision,
    )
    write_job_provenance(smk, seed=smk.params.seed)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
