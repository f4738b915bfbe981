"""Frozen blocks 1..k computed once, shared by every run that freezes them (see layerscope.train.features)."""

from pathlib import Path

from layerscope.core.devices import claim_gpu, share_gpus
from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    claim_gpu()  # before TensorFlow starts
    share_gpus(getattr(smk.resources, "gpu_mem_mb", 0))  # memory growth or a cap; logs the device
    from layerscope.train.features import extract_frozen_features
    from layerscope.train.fit import set_threads

    set_threads(smk.threads)
    data_dir = Path(smk.input.manifest).parent
    out = Path(smk.output.features)
    meta = extract_frozen_features(data_dir, int(smk.wildcards.k), smk.params.weights, out, smk.params.precision)
    write_job_provenance(smk, extra=meta)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
