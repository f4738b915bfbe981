import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from layerscope.core.code_digest import code_digest as library_digest
from layerscope.core.config_types import integers_as_int
from layerscope.core.errors import LayerscopeError
from layerscope.data.experiment import (
    check_experiment,
    check_forced,
    experiment_fingerprint,
    record_experiment,
)
from layerscope.data.sources import listing_digest
from layerscope.data.splits import SPLITS
from layerscope.results.writer import TABLE_STEMS
from layerscope.train.runs import (
    RECORDING_KEYS,
    RUN_ID_PATTERN,
    cached_blocks,
    finetune_source,
    job_settings,
    parse_name,
    parse_run_id,
    replicate_grid,
    run_grid,
    split_replicate,
    transfer_run,
)
from layerscope.train.weight_sources import check_weights_source


def sort_keys(mapping):
    """Put every mapping's keys in sorted order, in place and at every depth: Snakemake
    compares params by their repr, so the same settings written in another key order
    would otherwise rerun every job from the data stage on."""
    for key in sorted(mapping):
        value = mapping.pop(key)
        mapping[key] = sort_keys(value) if isinstance(value, dict) else value
    return mapping


sort_keys(config)
# The schema's integer type lets 40.0 through; every library below gets 40.
integers_as_int(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")

RESULTS = f"results/{config['experiment']}"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
SRC = Path(workflow.basedir).parent / "src" / "layerscope"
SCRIPTS = Path(workflow.basedir) / "scripts"
RUNS = run_grid(config["runs"])
REPLICATES = replicate_grid(config)


report: "../report/workflow.rst"


wildcard_constraints:
    run=RUN_ID_PATTERN,


def code_digest(script):
    """Digest of a script and the library code it imports, found by following its
    imports (a hand-kept list of modules goes stale); editing any of it reruns the job.
    """
    return library_digest(SCRIPTS / script, SRC)


def data_source_input(wildcards):
    """The user's folder or manifest, so changing it reruns the data stage.

    Snakemake calls this while it builds the job graph, before anything is scheduled
    (dry runs too) and after it has read --forcerun: the moment to refuse a config of
    other data over a finished run's results (the main process only: jobs re-read this file).
    """
    if workflow.is_main_process:
        try:
            check_experiment(
                RESULTS,
                EXPERIMENT,
                forced=check_forced(
                    config,
                    workflow.dag_settings.forcerun,
                    workflow.dag_settings.forceall,
                ),
            )
        except LayerscopeError as err:
            raise WorkflowError(str(err)) from None
    source = config["data"]
    return [] if source["source"] == "elpv" else [source["path"]]


def data_inputs(splits=SPLITS, kinds=("images", "labels")):
    """The data stage's files a job reads, named ``manifest``, ``classes`` and
    ``<split>_<kind>``: declared, so deleting one reruns the data stage, and recorded in
    the job's provenance."""
    data = f"{RESULTS}/data"
    return {
        "manifest": f"{data}/manifest.csv",
        "classes": f"{data}/classes.json",
        **{
            f"{split}_{kind}": f"{data}/{split}_{kind}.npy"
            for split in splits
            for kind in kinds
        },
    }


def data_listing_digest():
    """Digest of the source's file listing (paths, sizes, modification times): Snakemake
    sees only a folder's own mtime, so adding, removing or replacing an image deep inside
    it changes this param instead and reruns the data stage."""
    source = config["data"]
    return listing_digest(source["source"], source["path"])


# What defines this experiment's data (docs/rerunning.md): compared with what
# results/<experiment>/ holds before anything runs, recorded when a run starts.
EXPERIMENT = experiment_fingerprint(config, data_listing_digest())


def finetune_start(wildcards):
    """Fine-tuning starts from the trained model of the configured freeze run (same seed)."""
    if split_replicate(wildcards.run)[0] != "vgg16-finetune":
        return []
    return f"{RESULTS}/runs/{finetune_start_run(wildcards.run)}/model.keras"


def frozen_features(wildcards):
    """The shared cache of a freeze run's frozen blocks: none without caching or freezing,
    and none for random frozen weights (``weights: none``), which each run draws itself.
    """
    training = config["training"]
    blocks = cached_blocks(parse_run_id(wildcards.run, training), training)
    if not blocks or training["weights"] == "none":
        return []
    return [f"{RESULTS}/features/block{blocks}.{suffix}" for suffix in ("npy", "json")]


def grid_runs(key, runs):
    """Runs named under config ``key``, each checked to be in this config's grid."""
    missing = [run for run in runs if run not in RUNS]
    if missing:
        raise WorkflowError(
            f"config {key}: {missing} not in the run grid ({', '.join(RUNS)})"
        )
    return list(runs)


try:
    check_weights_source(config["training"]["weights"])
except LayerscopeError as err:
    raise WorkflowError(f"config {err}") from None


EXPLAIN_RUNS = grid_runs("explain.runs", config["explain"]["runs"])
ONSET_RUNS = grid_runs("explain.onset.runs", config["explain"]["onset"]["runs"])
CAM_RUN = config["explain"]["cam_run"]
if CAM_RUN:
    grid_runs("explain.cam_run", [CAM_RUN])


# Explained VGG-16 runs with an fc head: their Grad-CAM per block ranks the freeze depths.
QUALITY_RUNS = [
    run
    for run in EXPLAIN_RUNS
    if parse_name(run)[0] in ("freeze", "finetune", "scratch")
]
FREEZE_RUNS = [run for run in RUNS if parse_name(run)[0] == "freeze"]
FREEZE_SEEDS = FREEZE_RUNS + [
    run for run in REPLICATES if parse_name(run)[0] == "freeze"
]


def seeds_of(run):
    """A run and its seed replicates, plain id first."""
    return [run] + [other for other in REPLICATES if split_replicate(other)[0] == run]


def gradient_norms_tables():
    """The relative gradient norms at the start of each seed's fine-tuning, read from the
    transfer model it starts from (none without fine-tuning)."""
    if not config["runs"]["finetune_from"]:
        return []
    return [
        f"{RESULTS}/baselines/gradient_norms/{finetune_start_run(run)}.csv"
        for run in seeds_of("vgg16-finetune")
    ]


def finetune_start_run(run):
    """The run a fine-tuning run (or its seed replicate) starts from: the same seed's source."""
    _, seed = split_replicate(run)
    source = finetune_source(config["runs"])
    return source if seed is None else f"{source}-seed{seed}"


def finetune_stores():
    """Each seed's fine-tuning weight-change store: how far each block moves when allowed."""
    if "vgg16-finetune" not in RUNS:
        return []
    return [
        f"{RESULTS}/runs/{run}/weight_changes.h5" for run in seeds_of("vgg16-finetune")
    ]


def cam_model_input():
    """The GAP model whose CAM is shown beside every explained run."""
    return [f"{RESULTS}/runs/{CAM_RUN}/model.keras"] if CAM_RUN else []


def measured_fill(*settings):
    """The run's fill measurement, for a rule with a fill setting of auto; none otherwise,
    so a fixed fill reruns nothing when the measurement changes."""
    return [f"{RESULTS}/explain/{{run}}/fills.json"] if "auto" in settings else []


def settings_of(section, *keys):
    """Only the named keys of a config section: a job's params are exactly what it reads,
    so changing another key of the section reruns nothing."""
    return {key: section[key] for key in keys}


def recording_settings():
    """The weight-change keys that shape a training run's store (figure keys do not)."""
    return settings_of(config["weight_changes"], *RECORDING_KEYS)


def comparison_runs():
    """The freeze-depth runs of the configured optimizer, shallowest first."""
    optimizer = config["weight_changes"]["compare_optimizer"]
    if optimizer not in config["runs"]["freeze_optimizers"]:
        return []
    return [
        f"vgg16-freeze{k}-{optimizer}" for k in sorted(config["runs"]["freeze_blocks"])
    ]


def all_outputs():
    """Every final output of the default pipeline."""
    outputs = [
        f"{RESULTS}/data/manifest.csv",
        f"{RESULTS}/data/class_counts.png",
        f"{RESULTS}/data/provenance.json",
        *expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=RUNS),
        f"{RESULTS}/tables/summary.md",
        f"{RESULTS}/report/landing.html",
        *expand(f"{RESULTS}/runs/{{run}}/figures/weight_changes_3d.png", run=RUNS),
    ]
    outputs += expand(
        f"{RESULTS}/explain/{{run}}/{{name}}",
        run=EXPLAIN_RUNS,
        name=["explanations.png", "feature_maps.png", "quality.png", "fills.png"],
    )
    outputs += expand(f"{RESULTS}/explain/{{run}}/onset.png", run=ONSET_RUNS)
    if QUALITY_RUNS:
        outputs.append(f"{RESULTS}/tables/freeze_recommendation.md")
        outputs += expand(f"{RESULTS}/explain/{{run}}/map_shape.md", run=QUALITY_RUNS)
    if len(comparison_runs()) > 1:
        outputs.append(f"{RESULTS}/figures/weight_changes_freeze_comparison.png")
    if config["weight_changes"]["animation"]:
        outputs += expand(
            f"{RESULTS}/runs/{{run}}/figures/weight_changes.gif", run=RUNS
        )
    return outputs


def table_files(suffix):
    """Each result table's ``<stem>.<suffix>`` as a named output, in the report's Tables
    category labelled by table (one report() over a list gives every file the same labels).
    """
    return {
        f"{suffix}_{stem}": report(
            f"{RESULTS}/tables/{stem}.{suffix}",
            caption="../report/tables.rst",
            category="Tables",
            subcategory="tables" if suffix == "html" else "downloads",
            labels={
                "run": "all runs",
                "method": stem,
                "figure": "table" if suffix == "html" else f"download ({suffix})",
            },
        )
        for stem in TABLE_STEMS
    }


def landing_recommendation():
    """The freeze-depth verdict for the landing page, when the grid explains VGG-16 runs."""
    return [f"{RESULTS}/tables/freeze_recommendation.json"] if QUALITY_RUNS else []


def landing_figures():
    """The key figures shown on the landing page."""
    figures = [f"{RESULTS}/figures/freeze_grid_heatmap.png"]
    return figures + (
        [f"{RESULTS}/figures/freeze_recommendation.png"] if QUALITY_RUNS else []
    )


def tensorboard_output():
    """A run's TensorBoard folder: an output only with ``training.tensorboard``."""
    if not config["training"]["tensorboard"]:
        return {}
    return {"tensorboard": directory(f"{RESULTS}/runs/{{run}}/tensorboard")}


def start_run():
    """Before the first job of a real run (not a dry run, --touch or a job's own process):
    record which data this experiment holds, then print the device and the run's cost
    estimate, and stop when it is too long for a machine without a GPU (docs/gpus-and-clusters.md).
    """
    if workflow.touch:
        return
    record_experiment(RESULTS, EXPERIMENT)
    if os.environ.get("LAYERSCOPE_COST_ESTIMATE") == "off":
        logger.info("cost estimate: off (LAYERSCOPE_COST_ESTIMATE=off)")
        return
    if not workflow.local_exec:
        logger.info("cost estimate: skipped, the jobs run on the cluster's machines")
        return
    jobs = list(workflow.dag.needrun_jobs())
    plan = {
        "config": config,
        "train": [job.wildcards["run"] for job in jobs if job.rule.name == "train"],
        "features": [
            int(job.wildcards["k"])
            for job in jobs
            if job.rule.name == "frozen_features"
        ],
    }
    if not (plan["train"] or plan["features"]):
        return  # nothing trains: nothing worth estimating
    plan["other"] = len(jobs) - len(plan["train"]) - len(plan["features"])
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(plan, handle, default=str)
        handle.flush()
        estimate = subprocess.run(
            [sys.executable, "-m", "layerscope.train.estimate", "--plan", handle.name],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    for line in estimate.stdout.splitlines():
        logger.info(line)
    if estimate.returncode == 3:
        raise WorkflowError(estimate.stderr.strip().splitlines()[-1])
    if estimate.returncode not in (0, 3):
        logger.warning(f"no cost estimate: {estimate.stderr.strip()[-500:]}")
