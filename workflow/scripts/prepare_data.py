"""Data stage: decode, split and cache the dataset (see layerscope.data.prepare)."""

from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance
from layerscope.data.prepare import DataSettings, output_files, prepare


def main(smk):
    settings = DataSettings.from_config(smk.params.data, smk.params.seed)
    out_dir = Path(smk.output.manifest).parent
    prepared = prepare(settings, out_dir)
    write_job_provenance(
        smk,
        inputs=[p for p in smk.input if Path(p).is_file()],
        outputs=output_files(out_dir),
        seed=smk.params.seed,
        extra={
            "source": settings.source,
            "images": len(prepared.manifest),
            "resize": settings.resize,
            "files": prepared.files.record(),
        },
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
