"""Linear-probe baseline: logistic regression on frozen VGG-16 features (see layerscope.baselines)."""

from pathlib import Path

from layerscope.scripting import run_job


def main(smk):
    from layerscope.baselines import run_probe
    from layerscope.provenance import write_provenance
    from layerscope.training import enable_determinism, set_threads

    set_threads(smk.threads)
    enable_determinism(smk.params.seed)
    data_dir = Path(smk.input.manifest).parent
    run_probe(data_dir, Path(smk.output.metrics).parent, smk.params.weights, smk.params.class_weight,
              smk.params.seed)
    write_provenance(
        smk.output.provenance,
        rule=smk.rule,
        experiment=smk.config["experiment"],
        config=smk.config,
        seed=smk.params.seed,
        inputs=[*smk.input, *(data_dir / f"{split}_images.npy" for split in ("train", "val", "test"))],
        outputs=[smk.output.metrics, smk.output.predictions],
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
