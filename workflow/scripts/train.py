"""Train one run of the grid (see layerscope.train.run.train_run)."""

from pathlib import Path

from layerscope.core.devices import claim_gpu
from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    claim_gpu()  # before TensorFlow starts: concurrent jobs get distinct GPUs
    from layerscope.core.provenance import stamp
    from layerscope.data.prepare import split_file
    from layerscope.train.fit import set_threads
    from layerscope.train.run import RunFiles, train_run
    from layerscope.train.runs import parse_run_id

    set_threads(smk.threads)
    spec = parse_run_id(smk.wildcards.run, smk.params.training)
    files = RunFiles(Path(smk.output.model).parent)
    start_from = Path(smk.input.start_from) if isinstance(smk.input.start_from, str) else None
    features = Path(smk.input.features) if isinstance(smk.input.features, str) else None
    data_dir = Path(smk.input.manifest).parent
    provenance = stamp(smk.config["experiment"], smk.config, smk.params.seed)
    train_run(
        spec,
        smk.config,
        data_dir,
        files,
        start_from=start_from,
        provenance=provenance,
        features=features,
        step_checkpoints=smk.params.step_checkpoints,
    )
    write_job_provenance(
        smk,
        inputs=[*smk.input, *(split_file(data_dir, split, "images") for split in ("train", "test"))],
        outputs=[o for o in smk.output if o != smk.output.provenance],
        seed=smk.params.seed,
        extra={"run": spec.run_id},
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
