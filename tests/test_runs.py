import keras
import numpy as np
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.train.evaluation import classification_metrics, majority_baseline, predictions_table
from layerscope.train.optimizers import make_optimizer
from layerscope.train.runs import finetune_source, parse_run_id, run_epochs, run_grid, run_patience, run_settings

TRAINING = {"optimizer": "nag", "finetune": {"optimizer": "momentum"}}
RUNS = {
    "lenet5": ["tanh-sgd", "relu-adam"],
    "scratch_optimizers": ["momentum"],
    "freeze_blocks": [1, 2, 3, 4, 5],
    "freeze_optimizers": ["sgd", "momentum", "nag"],
    "finetune_from": "vgg16-freeze3-momentum",
    "gap_freeze_blocks": [3],
}


@pytest.mark.parametrize(
    ("run_id", "family", "optimizer", "depth", "head", "pretrained"),
    [
        ("lenet5-tanh-sgd", "lenet5", "sgd", 0, "fc", False),
        ("vgg16-scratch-nag", "scratch", "nag", 0, "fc", False),
        ("vgg16-freeze3-momentum", "freeze", "momentum", 3, "fc", True),
        ("vgg16-freeze5-adam", "freeze", "adam", 5, "fc", True),
        ("vgg16-finetune", "finetune", "momentum", 0, "fc", True),
        ("vgg16-gap-freeze3", "gap", "nag", 3, "gap", True),
    ],
)
def test_parse_run_id(run_id, family, optimizer, depth, head, pretrained):
    spec = parse_run_id(run_id, TRAINING)
    assert (spec.family, spec.optimizer, spec.freeze_blocks, spec.head, spec.pretrained) == (
        family,
        optimizer,
        depth,
        head,
        pretrained,
    )


def test_lenet_activation_is_parsed():
    assert parse_run_id("lenet5-relu-adam", TRAINING).activation == "relu"


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        ("vgg16-freeze7-sgd", "freeze depth 7 is outside 0..5"),
        ("vgg16-freeze3-lbfgs", "unknown run id"),
        ("lenet5-sigmoid-sgd", "tanh or relu"),
        ("resnet", "unknown run id"),
    ],
)
def test_bad_run_ids_are_named(run_id, message):
    with pytest.raises(LayerscopeError, match=message):
        parse_run_id(run_id, TRAINING)


def test_grid_of_the_study():
    ids = run_grid(RUNS)
    assert len(ids) == 2 + 1 + 15 + 1 + 1 and len(set(ids)) == len(ids)
    assert "vgg16-freeze5-nag" in ids and ids[-2:] == ["vgg16-finetune", "vgg16-gap-freeze3"]
    assert finetune_source(RUNS) == "vgg16-freeze3-momentum"


def test_finetune_source_must_be_in_the_grid():
    with pytest.raises(LayerscopeError, match="finetune_from: 'vgg16-freeze2-sgd'"):
        finetune_source({**RUNS, "freeze_blocks": [3], "finetune_from": "vgg16-freeze2-sgd"})


def test_optimizers_are_keras_own():
    assert make_optimizer("sgd", 0.1).momentum == 0
    momentum = make_optimizer("momentum", 0.1, 0.8)
    assert momentum.momentum == 0.8 and not momentum.nesterov
    assert make_optimizer("nag", 0.1).nesterov
    assert isinstance(make_optimizer("adam", 0.1), keras.optimizers.Adam)
    assert isinstance(make_optimizer("rmsprop", 0.1), keras.optimizers.RMSprop)
    with pytest.raises(LayerscopeError, match="unknown optimizer 'lbfgs'"):
        make_optimizer("lbfgs", 0.1)


def test_classification_metrics_known_answer():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per class: a P=1/2 R=1/2, b P=2/3 R=1, c P=1 R=1/2
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["c"]["recall"] == pytest.approx(0.5)
    f1 = [0.5, 0.8, 2 / 3]
    assert m["f1_macro"] == pytest.approx(np.mean(f1))
    assert m["f1_weighted"] == pytest.approx(np.mean(f1))  # equal supports
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_majority_baseline():
    base = majority_baseline(np.array([2, 2, 1, 2, 0]), np.array([2, 0, 2, 1]), 3)
    assert base["class_index"] == 2 and base["accuracy"] == 0.5
    assert base["f1_weighted"] == pytest.approx(0.5 * (2 / 3))


def test_predictions_table():
    table = predictions_table(["x.png", "y.png"], np.array([1, 0]), np.array([[0.2, 0.8], [0.4, 0.6]]), ["ok", "bad"])
    assert table.to_dict("list") == {
        "path": ["x.png", "y.png"],
        "true": ["bad", "ok"],
        "predicted": ["bad", "bad"],
        "p_ok": [0.2, 0.4],
        "p_bad": [0.8, 0.6],
    }


def _config():
    import yaml
    from helpers import REPO

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["training"].update(  # fixed here so the test does not follow the default config's tuning
        epochs={"lenet5": 10, "scratch": 1, "freeze": [1, 1, 4, 6, 15], "gap": 3},
        batch_size=16,
        learning_rate={"sgd": 0.003, "momentum": 0.001, "nag": 0.001, "adam": 0.0001, "rmsprop": 0.0001},
    )
    return config


def test_run_settings_keep_only_this_runs_entries():
    config = _config()
    lenet = run_settings("lenet5-tanh-sgd", config)
    assert lenet["epochs"] == {"lenet5": 10} and lenet["learning_rate"] == {"sgd": 0.003}
    assert not {"weights", "dense_units", "dropout", "optimizer", "finetune", "cache_frozen_features"} & set(lenet)
    assert lenet["batch_size"] == 16 and lenet["checkpoint_ratio"] == 1.5
    freeze = run_settings("vgg16-freeze3-nag", config)
    assert freeze["epochs"] == {"freeze": 4} and freeze["learning_rate"] == {"nag": 0.001}  # depth 3 of the list
    assert freeze["weights"] == "hed-bsds500" and freeze["cache_frozen_features"] is True
    assert "weights" not in run_settings("vgg16-scratch-momentum", config)
    finetune = run_settings("vgg16-finetune", config)
    assert finetune["finetune"] == config["training"]["finetune"]
    assert "epochs" not in finetune and "learning_rate" not in finetune
    assert run_settings("vgg16-gap-freeze3", config)["optimizer"] == "momentum"


def test_run_settings_depend_only_on_what_the_run_reads():
    config = _config()
    changed = _config()
    changed["training"]["epochs"]["lenet5"] = 99
    changed["training"]["learning_rate"]["adam"] = 0.5
    changed["training"]["optimizer"] = "nag"
    changed["runs"]["freeze_blocks"] = [1]
    changed["training"]["epochs"]["freeze"][4] = 99  # depth 5's epochs
    for run in ("vgg16-freeze3-momentum", "vgg16-scratch-momentum", "vgg16-finetune"):
        assert run_settings(run, changed) == run_settings(run, config), run
    assert run_settings("lenet5-tanh-sgd", changed)["epochs"] == {"lenet5": 99}
    assert run_settings("lenet5-relu-adam", changed)["learning_rate"] == {"adam": 0.5}
    assert run_settings("vgg16-gap-freeze3", changed) != run_settings("vgg16-gap-freeze3", config)


def test_run_settings_pass_new_keys_through():
    """Keys added later (by other features) apply to every run without touching run_settings."""
    config = _config()
    config["training"]["augmentation"] = {"flip": True, "rotate": 10}
    config["training"]["seeds"] = [1, 2]
    config["training"]["label_smoothing"] = {"lenet5": 0.0, "freeze": 0.1, "scratch": 0, "gap": 0}
    settings = run_settings("vgg16-freeze3-momentum", config)
    assert settings["augmentation"] == {"flip": True, "rotate": 10} and settings["seeds"] == [1, 2]
    assert settings["label_smoothing"] == {"freeze": 0.1}


def test_run_settings_are_enough_to_parse_and_idempotent():
    config = _config()
    for run in run_grid(config["runs"]):
        settings = run_settings(run, config)
        assert parse_run_id(run, settings) == parse_run_id(run, config["training"])
        assert run_settings(run, {"training": settings}) == settings


def test_per_depth_epochs_follow_the_depth_and_refuse_depth_zero():
    epochs = {"freeze": [1, 2, 3, 4, 5], "gap": 3}
    training = {"optimizer": "momentum", "finetune": {"optimizer": "momentum"}}
    assert [run_epochs(parse_run_id(f"vgg16-freeze{k}-sgd", training), epochs) for k in range(1, 6)] == [1, 2, 3, 4, 5]
    assert run_epochs(parse_run_id("vgg16-gap-freeze0", training), epochs) == 3
    with pytest.raises(LayerscopeError, match="freezes 0 blocks.*depths 1-5 only"):
        run_epochs(parse_run_id("vgg16-freeze0-sgd", training), epochs)


def test_patience_is_one_for_all_or_per_family():
    training = {"optimizer": "momentum", "finetune": {"optimizer": "momentum"}}
    per_family = {"lenet5": 8, "scratch": 10, "freeze": 3, "finetune": 3, "gap": None}
    scratch, gap = parse_run_id("vgg16-scratch-momentum-seed43", training), parse_run_id("vgg16-gap-freeze4", training)
    assert (run_patience(scratch, 3), run_patience(scratch, None)) == (3, None)
    assert (run_patience(scratch, per_family), run_patience(gap, per_family)) == (10, None)
    # A training job's params keep only its family's patience: another family's change reruns nothing
    config = _config()
    config["training"]["early_stopping_patience"] = per_family
    settings = run_settings("vgg16-scratch-momentum", config)
    assert settings["early_stopping_patience"] == {"scratch": 10}
    assert run_patience(scratch, settings["early_stopping_patience"]) == 10
