"""Collect every run into the study's tables and result figures (see layerscope.results.tables)."""

import json
from pathlib import Path

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.core.machine import machines_of
    from layerscope.explain.feature_map_claims import StudyBFiles
    from layerscope.results.figures import plot_freeze_heatmap, plot_validation_curves
    from layerscope.results.lime_claims import read_lime_checks
    from layerscope.results.run_files import load_histories, load_probe, load_runs
    from layerscope.results.selection import primary_runs
    from layerscope.results.tables import freeze_grid
    from layerscope.results.writer import write_all_tables

    runs_dir = Path(smk.input.metrics[0]).parents[1]
    classes = json.loads(Path(smk.input.classes).read_text())
    height, width = smk.params.image_size
    probe = load_probe(Path(smk.input.probe).parent, smk.params.seed)
    written = write_all_tables(
        runs_dir,
        smk.params.runs,
        Path(smk.output.summary).parent,
        (height, width, 3),
        len(classes),
        classes,
        smk.params.transfer,
        probe,
        machines_of(json.loads(Path(p).read_text()) for p in smk.input.train_provenance),
        StudyBFiles(smk.input.feature_map_channels, smk.input.invariance, smk.input.onset),
        lime_checks=read_lime_checks(smk.input.lime_checks),
        interval_seed=smk.params.seed,
    )
    runs = load_runs(runs_dir, smk.params.runs)
    plot_validation_curves(load_histories(runs_dir, list(primary_runs(runs))), smk.output.curves)
    plot_freeze_heatmap(freeze_grid(runs), smk.output.heatmap)
    write_job_provenance(smk, outputs=[*written, smk.output.curves, smk.output.heatmap])


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
