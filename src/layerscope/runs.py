"""Run ids: what each training job trains, parsed from its name, and the grid.

A run id names the model, initialisation, freeze depth and optimizer, e.g.
``lenet5-tanh-sgd``, ``vgg16-scratch-nag``, ``vgg16-freeze3-momentum``,
``vgg16-finetune``, ``vgg16-gap-freeze3``. The config decides which exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from layerscope.errors import LayerscopeError

OPTIMIZERS = ("sgd", "momentum", "nag", "adam", "rmsprop")
ACTIVATIONS = ("tanh", "relu")
_OPT = "|".join(OPTIMIZERS)
RUN_ID_PATTERN = (
    rf"lenet5-(?:{'|'.join(ACTIVATIONS)})-(?:{_OPT})"
    rf"|vgg16-scratch-(?:{_OPT})"
    rf"|vgg16-freeze[0-5]-(?:{_OPT})"
    r"|vgg16-finetune"
    r"|vgg16-gap-freeze[0-5]"
)


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
        return self.family != "lenet5"


def parse_run_id(run_id: str, training: dict) -> RunSpec:
    """The spec of ``run_id``; the finetune and GAP optimizers come from the config."""
    if match := re.fullmatch(rf"lenet5-(\w+)-({_OPT})", run_id):
        activation, optimizer = match.groups()
        if activation not in ACTIVATIONS:
            raise LayerscopeError(f"run '{run_id}': LeNet-5 activation must be tanh or relu")
        return RunSpec(run_id, "lenet5", optimizer, activation=activation, pretrained=False)
    if match := re.fullmatch(rf"vgg16-scratch-({_OPT})", run_id):
        return RunSpec(run_id, "scratch", match.group(1), pretrained=False)
    if match := re.fullmatch(rf"vgg16-freeze(\d+)-({_OPT})", run_id):
        return RunSpec(run_id, "freeze", match.group(2), freeze_blocks=_depth(match.group(1), run_id))
    if run_id == "vgg16-finetune":
        return RunSpec(run_id, "finetune", training["finetune"]["optimizer"])
    if match := re.fullmatch(r"vgg16-gap-freeze(\d+)", run_id):
        depth = _depth(match.group(1), run_id)
        return RunSpec(run_id, "gap", training["optimizer"], freeze_blocks=depth, head="gap")
    raise LayerscopeError(
        f"unknown run id '{run_id}': expected lenet5-<tanh|relu>-<opt>, vgg16-scratch-<opt>, "
        f"vgg16-freeze<0-5>-<opt>, vgg16-finetune or vgg16-gap-freeze<0-5> with opt in {', '.join(OPTIMIZERS)}"
    )


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
