import copy

import pytest
import yaml
from helpers import REPO
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
CONFIGS = sorted((REPO / "config").glob("*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    config = yaml.safe_load(path.read_text())
    validate(config, SCHEMA)  # raises on the first invalid key
    assert config["experiment"] == {"config": "default"}.get(path.stem, path.stem)


def test_defaults_fill_a_minimal_config():
    config = {"experiment": "x"}
    validate(config, SCHEMA, set_default=True)
    assert config["seed"] == 42
    assert config["data"]["image_size"] == [128, 128]
    assert config["data"]["test_fraction"] == 0.25


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        (lambda c: c["data"].update(image_size=[0, 64]), "image_size"),
        (lambda c: c["data"].update(imagesize=[64, 64]), "imagesize"),
        (lambda c: c.update(sed=1), "sed"),
        (lambda c: c["data"].update(source="s3"), "source"),
        (lambda c: c["data"].update(test_fraction=1.5), "test_fraction"),
        (lambda c: c.update(experiment="../escape"), "experiment"),
        (lambda c: c["training"].update(early_stopping_patience={"scratch": 8}), "early_stopping_patience"),
        (lambda c: c["training"].update(early_stopping_patience=0), "early_stopping_patience"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(change, culprit):
    config = copy.deepcopy(load("config.yaml"))
    change(config)
    with pytest.raises(WorkflowError, match=culprit):
        validate(config, SCHEMA)
