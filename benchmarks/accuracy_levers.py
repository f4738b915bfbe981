"""Where the accuracy ceiling of an experiment's data lies, and which cheap levers move it (prints tables).

Three measurements, on the prepared data of an experiment (``results/<experiment>/data``,
any image size), picking every setting on the validation split and reporting test
accuracy with its 95% bootstrap interval:

1. **Probes per block**: the linear probe (``layerscope.train.probe``: logistic regression
   on the per-channel spatial mean and max, C chosen on validation) on the output of the
   last conv layer of each VGG-16 block, and on blocks 3-5 together: what a linear
   read-out of each block's frozen features reaches.
2. **Dihedral augmentation of the frozen features** (flips and 90-degree rotations of
   the solar cells, label preserving): the trainable part of a freeze-k run (k = 5: the
   head; k = 4: block 5 and the head) is trained on the cached block-k output of the
   plain images, or, per epoch, of a random one of the eight variants of each image
   (same steps per epoch), with the config's learning rate and the kept epoch picked
   by validation loss, as in the pipeline.
3. **Fine-tuning longer, with augmentation** (``--finetune-from``): all layers of a trained
   run's model at the config's fine-tuning settings, on plain images or a random dihedral
   variant of each image per epoch.

Usage (after ``snakemake <results>/data/manifest.csv``):
    python benchmarks/accuracy_levers.py --config config/config.yaml --epochs 15 12
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from snakemake.utils import update_config, validate  # noqa: E402

BLOCK_OUTPUTS = {2: "block2_conv2", 3: "block3_conv3", 4: "block4_conv3", 5: "block5_conv3"}


def dihedral(images: np.ndarray, variant: int) -> np.ndarray:
    """Variant 0..7 of (N, H, W, C) square images: ``variant // 2`` quarter turns, then a flip if odd."""
    turned = np.rot90(images, variant // 2, axes=(1, 2))
    return turned[:, :, ::-1] if variant % 2 else turned


def interval_text(y_true: np.ndarray, probabilities: np.ndarray, classes: int, seed: int) -> str:
    from layerscope.core.bootstrap import bootstrap_intervals

    accuracy = bootstrap_intervals(y_true, probabilities.argmax(axis=1), classes, seed)["accuracy"]
    return f"{accuracy.estimate:.3f} [{accuracy.low:.3f}, {accuracy.high:.3f}]"


def block_probes(images: dict, labels: dict, weights: str, seed: int, classes: int) -> None:
    import keras

    from layerscope.train.models import vgg16
    from layerscope.train.probe import fit_probe, pooled_features

    model = vgg16(images["train"].shape[1:], classes, weights=weights)
    outputs = keras.Model(model.input, [model.get_layer(name).output for name in BLOCK_OUTPUTS.values()])
    pooled = {block: {} for block in BLOCK_OUTPUTS}
    for split, x in images.items():
        maps = outputs.predict(x, batch_size=64, verbose=0)
        for block, fmap in zip(BLOCK_OUTPUTS, maps):
            pooled[block][split] = pooled_features(fmap)
    pooled["3-5"] = {split: np.concatenate([pooled[b][split] for b in (3, 4, 5)], axis=1) for split in images}
    print(f"\n{'features':>14} {'C':>6} {'val acc':>8} {'test accuracy [95% CI]':>24}")
    for block, features in pooled.items():
        probabilities, details = fit_probe(features, labels, "none", seed)
        name = BLOCK_OUTPUTS.get(block, "blocks 3-5")
        val = details["val_accuracy_by_C"][str(details["C"])]
        test = interval_text(labels["test"], probabilities["test"], classes, seed)
        print(f"{name:>14} {details['C']:>6g} {val:>8.3f} {test:>24}")


def fit_by_validation(model, draw_epoch, labels, val_x, test_x, epochs, batch_size, seed):
    """Train epoch by epoch on ``draw_epoch(rng, order)``'s inputs; keep the lowest-val-loss epoch.

    Not :func:`layerscope.train.fit.fit`: that trains on one fixed array, and the
    augmented arms draw new inputs every epoch; both arms use this loop so they compare.

    Returns the kept epoch's validation accuracy, its index and the test probabilities.
    """
    best = None
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(labels["train"]))
        x = draw_epoch(rng, order)
        model.fit(x, labels["train"][order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        val_loss, val_accuracy = model.evaluate(val_x, labels["val"], verbose=0)
        if best is None or val_loss < best[0]:
            best = (val_loss, val_accuracy, epoch, [w.copy() for w in model.get_weights()])
    model.set_weights(best[3])
    return best[1], best[2], model.predict(test_x, batch_size=64, verbose=0)


def compiled(model, optimizer: str, rate: float, momentum: float):
    from layerscope.train.optimizers import make_optimizer

    loss = "sparse_categorical_crossentropy"
    model.compile(optimizer=make_optimizer(optimizer, rate, momentum), loss=loss, metrics=["accuracy"])
    return model


def train_tail(depth, features, labels, training, optimizer, epochs, seed, classes, variants):
    """Train a freeze-``depth`` run's tail on cached features (a random one of ``variants`` per image and epoch)."""
    from layerscope.train.fit import enable_determinism
    from layerscope.train.models import split_at_block
    from layerscope.train.run import build_model
    from layerscope.train.runs import parse_run_id

    enable_determinism(seed)
    spec = parse_run_id(f"vgg16-freeze{depth}-{optimizer}", training)
    _, tail = split_at_block(build_model(spec, features["shape"], classes, training), depth)
    compiled(tail, optimizer, training["learning_rate"][optimizer], training["momentum"])
    train = features["train"]  # (variants, N, ...)

    def draw_epoch(rng, order):
        return train[rng.integers(0, variants, len(order)), order]

    return fit_by_validation(
        tail, draw_epoch, labels, features["val"], features["test"], epochs, training["batch_size"], seed
    )


def finetuning(images, labels, training, args, seed, classes) -> None:
    """All layers of a trained run's model, at the fine-tuning settings, on plain or dihedral images."""
    from layerscope.train.fit import enable_determinism
    from layerscope.train.models import load_model, set_frozen_blocks

    settings = training["finetune"]
    print(f"\nfine-tuning {args.finetune_from}, {settings['optimizer']} at {settings['learning_rate']:g}")
    print(f"{'images':>9} {'epoch':>5} {'val acc':>8} {'test accuracy [95% CI]':>24} {'s':>5}")
    for variants, name in ((1, "plain"), (8, "dihedral")):
        enable_determinism(seed)
        model = load_model(args.finetune_from)
        set_frozen_blocks(model, 0)
        compiled(model, settings["optimizer"], settings["learning_rate"], training["momentum"])

        def draw_epoch(rng, order, variants=variants):
            chosen = rng.integers(0, variants, len(order))
            return np.stack([dihedral(images["train"][i : i + 1], v)[0] for i, v in zip(order, chosen)])

        started = time.perf_counter()
        val, epoch, test = fit_by_validation(
            model, draw_epoch, labels, images["val"], images["test"], args.finetune_epochs, training["batch_size"], seed
        )
        test_text = interval_text(labels["test"], test, classes, seed)
        print(f"{name:>9} {epoch + 1:>5} {val:>8.3f} {test_text:>24} {time.perf_counter() - started:>5.0f}", flush=True)


def augmentation(images, labels, training, args, seed, classes) -> None:
    from layerscope.train.features import frozen_extractor

    header = f"{'depth':>5} {'optimizer':>9} {'features':>9} {'epoch':>5} {'val acc':>8}"
    print(f"\n{header} {'test accuracy [95% CI]':>24} {'s':>5}")
    for depth, epochs in zip((5, 4), args.epochs):
        extractor = frozen_extractor(images["train"].shape[1:], depth, training["weights"])
        started = time.perf_counter()
        features = {
            "shape": images["train"].shape[1:],
            "train": np.stack(
                [extractor.predict(dihedral(images["train"], v), batch_size=64, verbose=0) for v in range(8)]
            ),
            "val": extractor.predict(images["val"], batch_size=64, verbose=0),
            "test": extractor.predict(images["test"], batch_size=64, verbose=0),
        }
        print(f"  (block-{depth} features of 8 variants: {time.perf_counter() - started:.0f} s)")
        for optimizer in args.optimizers:
            for variants, name in ((1, "plain"), (8, "dihedral")):
                started = time.perf_counter()
                val, epoch, test = train_tail(
                    depth, features, labels, training, optimizer, epochs, seed, classes, variants
                )
                print(
                    f"{depth:>5} {optimizer:>9} {name:>9} {epoch + 1:>5} {val:>8.3f} "
                    f"{interval_text(labels['test'], test, classes, seed):>24} {time.perf_counter() - started:>5.0f}",
                    flush=True,
                )


def main() -> None:
    from layerscope.data.prepare import load_classes, load_split
    from layerscope.data.splits import SPLITS
    from layerscope.train.fit import set_threads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=["config/config.yaml"], help="config files, later ones win")
    parser.add_argument("--epochs", nargs=2, type=int, default=[15, 12], help="epochs of the depth-5 and depth-4 runs")
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "momentum"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["probes", "augmentation"])
    parser.add_argument("--finetune-from", help="a run's model.keras: also fine-tune all its layers, plain vs dihedral")
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    config = {}
    for path in args.config:  # merged as snakemake --configfile merges them
        update_config(config, yaml.safe_load(Path(path).read_text()))
    validate(config, "workflow/schemas/config.schema.yaml", set_default=True)
    set_threads(args.threads)
    data_dir = Path("results") / config["experiment"] / "data"
    classes = len(load_classes(data_dir))
    images, labels = {}, {}
    for split in SPLITS:
        x, y = load_split(data_dir, split)
        images[split], labels[split] = x.astype(np.float32), y
    print(f"{data_dir}: {images['train'].shape[1]} px, " + ", ".join(f"{s} {len(y)}" for s, y in labels.items()))
    if "probes" not in args.skip:
        block_probes(images, labels, config["training"]["weights"], config["seed"], classes)
    if "augmentation" not in args.skip:
        augmentation(images, labels, config["training"], args, config["seed"], classes)
    if args.finetune_from:
        finetuning(images, labels, config["training"], args, config["seed"], classes)


if __name__ == "__main__":
    main()
