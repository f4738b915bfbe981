"""VGG's layer-naming convention, read in one place: ``block<i>_<layer>`` belongs to block i.

Freezing, the weight-change store, the explanation quality and the freeze-depth
recommendation all group layers by block; one parser keeps them agreeing.
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"block(\d+)(?:_|$)")
_LENET_STAGE = re.compile(r"c\d+")


def block_of(name: str) -> int | None:
    """The VGG block number of a layer (``block3_conv2``) or block label (``block3``); None otherwise."""
    match = _BLOCK.match(name)
    return int(match.group(1)) if match else None


def block_label(layer_name: str) -> str:
    """Block of a layer: ``block{i}_*`` -> ``block{i}``, else ``head``.

    A LeNet conv stage (``c1``, ``c3``, ``c5``) is its own block, as the paper draws them.
    """
    block = block_of(layer_name)
    if block is not None and layer_name != f"block{block}":
        return f"block{block}"
    if _LENET_STAGE.fullmatch(layer_name):
        return layer_name
    return "head"
