"""Train one run of the grid (see layerscope.train.run.train_run)."""

from pathlib import Path

from layerscope.core.devices import claim_gpu, share_gpus
from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    claim_gpu()  # before TensorFlow starts: concurrent jobs get distinct GPUs
    share_gpus(getattr(smk.resources, "gpu_mem_mb", 0))  # memory growth or a cap; logs the device
    from layerscope.core.provenance import stamp
    from layerscope.train.fit import set_threads
    from layerscope.train.run import RunFiles, train_run
    from layerscope.train.runs import parse_run_id

    set_threads(smk.threads)
    spec = parse_run_id(smk.wildcards.run, smk.params.training)
    start_from = Path(smk.input.start_from) if isinstance(smk.input.start_from, str) else None
    features = Path(smk.input.features[0]) if smk.input.features else None  # block<k>.npy beside its .json
    metrics = train_run(
        spec,
        Path(smk.input.manifest).parent,
        RunFiles(Path(smk.output.model).parent),
        training=smk.params.training,
        seed=smk.params.seed,
        recording=smk.params.recording,
        start_from=start_from,
        provenance=stamp(smk.config["experiment"], smk.config, smk.params.seed),
        features=features,
        step_checkpoints=smk.params.step_checkpoints,
    )
    write_job_provenance(smk, seed=smk.params.seed, extra={"run": spec.run_id, "precision": metrics["precision"]})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
