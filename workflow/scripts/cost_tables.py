"""The run's cost tables from Snakemake's benchmark records (see layerscope.results.costs)."""

import json
from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.core.machine import machines_of
    from layerscope.results.costs import write_cost_tables

    machines = machines_of(json.loads(Path(p).read_text()) for p in smk.input.train_provenance)
    results = Path(smk.input.train_provenance[0]).parents[2]  # results/<experiment>/runs/<run>/provenance.json
    written = write_cost_tables(results, Path(smk.output.rules[0]).parent, machines)
    write_job_provenance(smk, inputs=list(smk.input.train_provenance), outputs=written)


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
