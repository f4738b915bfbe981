"""config/README.md is the key reference generated from the schema and the default config."""

import pytest
import yaml
from helpers import REPO

from layerscope.core import config_reference
from layerscope.core.config_reference import key_rows, reference_markdown

SCHEMA = {
    "properties": {
        "experiment": {"type": "string", "description": "results folder"},
        "data": {
            "description": "the images",
            "properties": {
                "size": {"type": "array", "items": {"type": "integer"}, "default": [128, 128], "description": "h, w"},
                "mode": {"enum": ["a", "b"], "default": "a", "description": "how <x> is made"},
                "epochs": {"properties": {"freeze": {"$ref": "#/$defs/n", "default": 8, "description": "cap"}}},
            },
        },
    },
    "$defs": {"n": {"type": ["integer", "null"]}},
}


def test_committed_config_readme_is_generated():
    committed = (REPO / "config" / "README.md").read_text()
    assert committed == config_reference.main(), (
        "config/README.md is stale: python -m layerscope.core.config_reference > config/README.md"
    )


def test_rows_carry_type_schema_default_and_the_configs_value_where_it_differs():
    sections = dict(key_rows(SCHEMA, {"experiment": "x", "data": {"size": [64, 64], "mode": "a"}}))
    assert sections[""] == [
        {
            "key": "`experiment`",
            "type": "string",
            "schema default": "(required)",
            "config.yaml": "`x`",
            "meaning": "results folder",
        }
    ]
    size, mode, freeze = sections["data"]
    assert (size["key"], size["type"], size["schema default"], size["config.yaml"]) == (
        "`data.size`",
        "list of integer",
        "`[128, 128]`",
        "`[64, 64]`",
    )
    assert (mode["type"], mode["config.yaml"], mode["meaning"]) == (
        "a / b",
        "",
        "how \\<x> is made",
    )  # same value: blank
    assert (freeze["key"], freeze["type"], freeze["schema default"]) == (
        "`data.epochs.freeze`",
        "integer or null",
        "`8`",
    )
    page = reference_markdown(SCHEMA, {"experiment": "x"})
    assert "## `data`\n\nThe images.\n\n| key | type |" in page


def test_a_key_without_a_description_is_refused():
    schema = yaml.safe_load(yaml.safe_dump(SCHEMA))
    del schema["properties"]["data"]["properties"]["mode"]["description"]
    with pytest.raises(KeyError, match="data.mode has no description"):
        dict(key_rows(schema, {}))


def test_every_key_of_the_shipped_schema_is_described():
    schema = yaml.safe_load(config_reference.SCHEMA.read_text())
    rows = [row for _, section in key_rows(schema, {}) for row in section]
    assert len(rows) > 80 and all(row["meaning"] for row in rows)
