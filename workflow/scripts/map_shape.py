"""How concentrated and how stable each block's Grad-CAM is (see layerscope.explain.map_shape_study)."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.data.prepare import load_split
    from layerscope.explain.map_shape_study import write_map_shape
    from layerscope.train.fit import enable_determinism

    enable_determinism(smk.params.seed)
    images, _ = load_split(Path(smk.input.manifest).parent, "test")
    stem = Path(smk.output.csv).with_suffix("")
    write_map_shape(smk.input.models, smk.input.maps, images, stem, smk.params.batch_size)
    write_job_provenance(smk, seed=smk.params.seed)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
