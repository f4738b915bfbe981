"""The report's landing page from the run's own tables (see layerscope.results.landing)."""

import json
from pathlib import Path

from layerscope.core.scripting import run_job


def main(smk):
    from layerscope.core.machine import machines_of
    from layerscope.results.landing import host_line, write_landing

    recommendation = json.loads(Path(smk.input.recommendation[0]).read_text()) if smk.input.recommendation else None
    train_seconds = {Path(p).parent.name: json.loads(Path(p).read_text())["train_seconds"] for p in smk.input.metrics}
    write_landing(
        smk.output.page,
        tables_dir=Path(smk.input.gate).parent,
        figures=list(smk.input.figures),
        recommendation=recommendation,
        train_seconds=train_seconds,
        experiment=smk.config["experiment"],
        host=host_line(machines_of(json.loads(Path(p).read_text()) for p in smk.input.train_provenance)),
    )


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
