"""Run ids: what each training job trains, parsed from its name, and the grid.

A run id names the model, initialisation, freeze depth and optimizer, e.g.
``lenet5-tanh-sgd``, ``vgg16-scratch-nag``, ``vgg16-freeze3-momentum``,
``vgg16-finetune``, ``vgg16-gap-freeze3``. The config decides which exist.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from layerscope.core.errors import LayerscopeError
from layerscope.train.optimizers import OPTIMIZERS

ACTIVATIONS = ("tanh", "relu")
_OPT = "|".join(OPTIMIZERS)
RUN_ID_PATTERN = (
    rf"lenet5-(?:{'|'.join(ACTIVATIONS)})-(?:{_OPT})"
    rf"|vgg16-scratch-(?:{_OPT})"
    rf"|vgg16-freeze[0-5]-(?:{_OPT})"
    r"|vgg16-finetune"
    r"|vgg16-gap-freeze[0-5]"
)
# A seed replicate of any run: ``<run-id>-seed<s>`` (see :func:`replicate_grid`).
RUN_ID_PATTERN = rf"(?:{RUN_ID_PATTERN})(?:-seed\d+)?"


@dataclass(frozen=True)
class RunSpec:
    """What one run trains."""

    run_id: str
    family: str  # "lenet5" | "scratch" | "freeze" | "finetune" | "gap"
    optimizer: str
    freeze_blocks: int = 0
    activation: str = "relu"
    head: str = "fc"
    pretrained: bool = True

    @property
    def is_vgg(self) -> bool:
        """Whether the run trains a VGG-16 (every family but LeNet-5)."""
        return self.family != "lenet5"


_RUN_NAMES = {
    "lenet5": re.compile(rf"lenet5-(?P<activation>\w+)-(?P<optimizer>{_OPT})"),
    "scratch": re.compile(rf"vgg16-scratch-(?P<optimizer>{_OPT})"),
    "freeze": re.compile(rf"vgg16-freeze(?P<k>\d+)-(?P<optimizer>{_OPT})"),
    "finetune": re.compile(r"vgg16-finetune"),
    "gap": re.compile(r"vgg16-gap-freeze(?P<k>\d+)"),
}


def _name_parts(run_id: str) -> tuple[str, dict[str, str]]:
    """The family and named parts of ``run_id`` (or of its seed replicate)."""
    base, _ = split_replicate(run_id)
    for family, pattern in _RUN_NAMES.items():
        if match := pattern.fullmatch(base):
            return family, match.groupdict()
    raise LayerscopeError(
        f"unknown run id '{run_id}': expected lenet5-<tanh|relu>-<opt>, vgg16-scratch-<opt>, "
        f"vgg16-freeze<0-5>-<opt>, vgg16-finetune or vgg16-gap-freeze<0-5> with opt in {', '.join(OPTIMIZERS)}"
    )


def parse_name(run_id: str) -> tuple[str, int | None, str | None]:
    """(family, frozen blocks, optimizer) as the name says, without a config.

    Enough to place a run that has not finished in a table.
    """
    family, parts = _name_parts(run_id)
    k = parts.get("k")
    return family, None if k is None else _depth(k, run_id), parts.get("optimizer")


def parse_run_id(run_id: str, training: dict) -> RunSpec:
    """The spec of ``run_id`` (or of its seed replicate); finetune and GAP optimizers come from the config.

    Args:
        run_id: a run id such as ``vgg16-freeze3-momentum``, optionally a seed replicate of one.
        training: the config's ``training`` section.

    Returns:
        The run's :class:`RunSpec`.

    Raises:
        LayerscopeError: an id that matches no run family, or a bad activation or freeze depth.
    """
    family, parts = _name_parts(run_id)
    if family == "lenet5":
        if parts["activation"] not in ACTIVATIONS:
            raise LayerscopeError(f"run '{run_id}': LeNet-5 activation must be tanh or relu")
        return RunSpec(run_id, family, parts["optimizer"], activation=parts["activation"], pretrained=False)
    if family == "scratch":
        return RunSpec(run_id, family, parts["optimizer"], pretrained=False)
    if family == "freeze":
        return RunSpec(run_id, family, parts["optimizer"], freeze_blocks=_depth(parts["k"], run_id))
    if family == "finetune":
        return RunSpec(run_id, family, training["finetune"]["optimizer"])
    return RunSpec(run_id, family, training["optimizer"], freeze_blocks=_depth(parts["k"], run_id), head="gap")


def _depth(text: str, run_id: str) -> int:
    depth = int(text)
    if not 0 <= depth <= 5:
        raise LayerscopeError(f"run '{run_id}': freeze depth {depth} is outside 0..5")
    return depth


def run_grid(runs: dict) -> list[str]:
    """Every run id the config's ``runs`` section asks for, in a stable order."""
    ids = [f"lenet5-{variant}" for variant in runs["lenet5"]]
    ids += [f"vgg16-scratch-{opt}" for opt in runs["scratch_optimizers"]]
    ids += [f"vgg16-freeze{k}-{opt}" for k in runs["freeze_blocks"] for opt in runs["freeze_optimizers"]]
    if runs["finetune_from"]:
        ids.append("vgg16-finetune")
    ids += [f"vgg16-gap-freeze{k}" for k in runs["gap_freeze_blocks"]]
    return ids


def finetune_source(runs: dict) -> str:
    """The run whose final weights fine-tuning starts from (must be a freeze run in the grid)."""
    source = runs["finetune_from"]
    if source not in run_grid(runs) or not source.startswith("vgg16-freeze"):
        raise LayerscopeError(
            f"runs.finetune_from: '{source}' is not a vgg16-freeze<k>-<opt> run of this config's grid"
        )
    return source


def transfer_run(runs: dict) -> int | str:
    """Table 8's "Transfer" row: the run fine-tuning starts from when it has the study's depth, else the depth.

    So fine-tuning is compared with the very network it started from; without fine-tuning
    (or from another depth) the row is the best optimizer at ``runs.transfer_depth`` by validation.
    """
    source = runs["finetune_from"]
    if source and parse_name(source)[1] == runs["transfer_depth"]:
        return source
    return runs["transfer_depth"]


FAMILIES = ("lenet5", "scratch", "freeze", "finetune", "gap")

# Keys of ``training`` that only some runs read; every other key applies to every run.
# ``train_run`` reads only these settings, so a key missing from the settings of a run
# it applies to fails loudly (KeyError): keep these predicates exactly as narrow as the
# code that reads the keys.
_ONLY_FOR = {
    "finetune": lambda spec: spec.family == "finetune",
    "optimizer": lambda spec: spec.family == "gap",  # the GAP runs' optimizer
    "weights": lambda spec: spec.is_vgg and spec.pretrained,
    "dense_units": lambda spec: spec.is_vgg,
    "dropout": lambda spec: spec.is_vgg,
    "cache_frozen_features": lambda spec: spec.freeze_blocks > 0,
}
# The fine-tuning run takes epochs and learning rate from ``training.finetune`` instead.
_NOT_FOR_FINETUNE = ("epochs", "learning_rate")


RECORDING_KEYS = ("period", "snapshots")
"""The ``weight_changes`` keys that shape a training run's store (figure keys do not)."""


def job_settings(run_id: str, config: dict) -> dict:
    """The keyword arguments of :func:`layerscope.train.run.train_run` for ``run_id``.

    They are what the train rule passes as its params, so the job reads nothing else.
    """
    return {
        "training": run_settings(run_id, config),
        "seed": run_seed(run_id, config),
        "recording": {key: config["weight_changes"][key] for key in RECORDING_KEYS},
    }


def run_settings(run_id: str, config: dict) -> dict:
    """The ``training`` settings that apply to ``run_id``, in the config's own shape.

    Maps keyed by model family (``epochs``) or optimizer (``learning_rate``) keep only
    this run's entry; keys only some runs read are dropped for the others; every other
    key (including ones added later) passes through whole. So a training job that
    depends on this, rather than the whole section, reruns exactly when a setting it
    uses changes: adding a run or changing another family's epochs leaves it alone.
    """
    training = config["training"]
    spec = parse_run_id(run_id, training)
    settings = {}
    for key, value in training.items():
        if key in _ONLY_FOR and not _ONLY_FOR[key](spec):
            continue
        if spec.family == "finetune" and key in _NOT_FOR_FINETUNE:
            continue
        settings[key] = _entry_of_run(value, spec)
    return settings


def _entry_of_run(value, spec: RunSpec):
    """A map keyed by families or optimizers reduced to this run's entry (same shape).

    A per-depth list of freeze epochs is reduced to this run's depth.
    """
    if not isinstance(value, dict) or not value:
        return value
    for names, name in ((FAMILIES, spec.family), (OPTIMIZERS, spec.optimizer)):
        if set(value) <= set(names):
            return {k: run_epochs(spec, value) if names is FAMILIES else v for k, v in value.items() if k == name}
    return value


def run_epochs(spec: RunSpec, epochs: dict) -> int:
    """The epochs of a run from ``training.epochs``: ``freeze`` may list one count per depth 1..5."""
    count = epochs[spec.family]
    if isinstance(count, list):
        if not 1 <= spec.freeze_blocks <= len(count):
            raise LayerscopeError(
                f"run '{spec.run_id}' freezes {spec.freeze_blocks} blocks, but training.epochs.{spec.family} "
                f"lists epochs for depths 1-{len(count)} only: give one number for all depths"
            )
        return count[spec.freeze_blocks - 1]
    return count


def run_patience(spec: RunSpec, patience: int | dict | None) -> int | None:
    """A run's early-stopping patience from ``training.early_stopping_patience``: one for all, or per family."""
    return patience[spec.family] if isinstance(patience, dict) else patience


_REPLICATE = re.compile(r"(?P<base>.+)-seed(?P<seed>\d+)")


def split_replicate(run_id: str) -> tuple[str, int | None]:
    """(base run id, training seed) of a seed replicate ``<run-id>-seed<s>``; (run_id, None) otherwise."""
    if match := _REPLICATE.fullmatch(run_id):
        return match.group("base"), int(match.group("seed"))
    return run_id, None


def training_seeds(config: dict) -> list[int]:
    """The training seeds of every run: ``runs.seeds``, or the experiment seed alone.

    The first seed trains the run under its plain id (the run the explanations and
    figures use); each further seed ``s`` trains a replicate ``<run-id>-seed<s>``.
    """
    return list(config["runs"].get("seeds") or [config["seed"]])


def seeded_runs(runs: dict) -> list[str]:
    """The runs of the grid trained under every seed: those ``runs.seeded`` names or matches.

    ``runs.seeded`` lists run ids or shell-style patterns of them (``vgg16-freeze*-momentum``);
    null (or absent) seeds every run.

    Raises:
        LayerscopeError: a pattern that matches no run of the grid (a typo would silently
            leave the cells it meant with one seed).
    """
    grid = run_grid(runs)
    patterns = runs.get("seeded")
    if patterns is None:
        return grid
    unmatched = [pattern for pattern in patterns if not fnmatch.filter(grid, pattern)]
    if unmatched:
        raise LayerscopeError(f"runs.seeded: {unmatched} match(es) no run of this config's grid ({', '.join(grid)})")
    return [run_id for run_id in grid if any(fnmatch.fnmatchcase(run_id, pattern) for pattern in patterns)]


def replicate_grid(config: dict) -> list[str]:
    """The seed replicates of the seeded runs of the grid (empty with one training seed)."""
    extra = training_seeds(config)[1:]
    return [f"{run_id}-seed{seed}" for run_id in seeded_runs(config["runs"]) if extra for seed in extra]


def run_seed(run_id: str, config: dict) -> int:
    """The training seed of ``run_id`` (a replicate's own, else the first training seed)."""
    _, seed = split_replicate(run_id)
    return training_seeds(config)[0] if seed is None else seed


def cached_blocks(spec: RunSpec, training: dict) -> int:
    """How many frozen blocks a run reads from the feature cache (0: none).

    The GAP head reads ``block5_conv3`` directly (no ``block5_pool`` to cut at), so a
    GAP run with all five blocks frozen is trained whole.
    """
    if not (spec.freeze_blocks and training["cache_frozen_features"]):
        return 0
    if spec.head == "gap" and spec.freeze_blocks == 5:
        return 0
    return spec.freeze_blocks
