"""Integer config keys read as ``int`` even when written ``40.0``.

JSON Schema's ``integer`` type accepts any number with a zero fractional part, so a
config may pass validation with ``image_size: [40.0, 40]`` or ``seed: 7.0`` (YAML reads
``7.0`` as a float; so does ``snakemake --config seed=7.0``). Libraries then fail deep
inside (``TypeError`` from Pillow, numpy or pandas). This module turns every such value at
a place the schema types ``integer`` into the ``int`` it equals, once, right after
validation; ``40.5`` never gets here: the schema refuses it naming the key.
"""

from __future__ import annotations

import os
from typing import Any

import yaml


def integers_as_int(config: dict, schema: dict | str | os.PathLike) -> dict:
    """Turn integral floats into ints wherever ``schema`` types the value ``integer``, in place.

    Args:
        config: a config already validated against ``schema``.
        schema: the JSON schema (a mapping, or the path of its YAML file).

    Returns:
        ``config``, for chaining.
    """
    if not isinstance(schema, dict):
        with open(schema) as handle:
            schema = yaml.safe_load(handle)
    for key, value in config.items():
        config[key] = _normalised(value, schema.get("properties", {}).get(key, {}), schema)
    return config


def _normalised(value: Any, node: dict, root: dict) -> Any:
    """``value`` with integral floats at integer places made ints (dicts and lists changed in place)."""
    branches = _branches(node, root)
    if isinstance(value, float):
        types = {kind for branch in branches for kind in _types(branch)}
        return int(value) if value.is_integer() and "integer" in types and "number" not in types else value
    if isinstance(value, list):
        items = next((branch["items"] for branch in branches if isinstance(branch.get("items"), dict)), {})
        value[:] = [_normalised(item, items, root) for item in value]
    elif isinstance(value, dict):
        for key, item in value.items():
            value[key] = _normalised(item, _property(branches, key), root)
    return value


def _branches(node: dict, root: dict) -> list[dict]:
    """The node itself (``$ref`` resolved) and its ``oneOf`` / ``anyOf`` alternatives."""
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return [node, *[_branches(alt, root)[0] for alt in node.get("oneOf", []) + node.get("anyOf", [])]]


def _types(node: dict) -> list[str]:
    kind = node.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _property(branches: list[dict], key: str) -> dict:
    """The schema of a mapping's ``key``: its named property, else the additional-properties schema."""
    for branch in branches:
        if key in branch.get("properties", {}):
            return branch["properties"][key]
    for branch in branches:
        if isinstance(branch.get("additionalProperties"), dict):
            return branch["additionalProperties"]
    return {}
