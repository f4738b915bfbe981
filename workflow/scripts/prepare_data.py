"""Data stage: decode, split and cache the dataset (see layerscope.data.prepare)."""

from pathlib import Path

from layerscope.core.provenance import write_provenance
from layerscope.core.scripting import run_job
from layerscope.data.prepare import DataSettings, output_files, prepare


def main(smk):
    settings = DataSettings.from_config(smk.params.data, smk.params.seed)
    out_dir = Path(smk.output.manifest).parent
    manifest = prepare(settings, out_dir)
    write_provenance(
        smk.output.provenance,
        rule=smk.rule,
        experiment=smk.params.experiment,
        config=smk.config,
        seed=smk.params.seed,
        inputs=[p for p in smk.input if Path(p).is_file()],
        outputs=output_files(out_dir),
        extra={"source": settings.source, "images": len(manifest)},
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
