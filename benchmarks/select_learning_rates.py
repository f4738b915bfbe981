"""Learning rates chosen on the validation split only (prints a table; writes nothing).

For each optimizer and each learning rate of a grid, trains a freeze-k run's trainable
part (on the experiment's shared frozen-feature cache, so a sweep costs no feature
extraction) for a few epochs and prints the best validation accuracy and loss. The
rate to put in ``training.learning_rate.<optimizer>`` is the one with the highest
validation accuracy; the test split is never read. How the default config's rates were
chosen is written down in config/README.md.

Usage (after ``snakemake <results>/features/block<k>.npy``):
    python benchmarks/select_learning_rates.py --config config/config.yaml --depth 4 \
        --optimizers sgd momentum nag --rates 1e-4 3e-4 1e-3 3e-3 --epochs 4
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import yaml  # noqa: E402
from snakemake.utils import validate  # noqa: E402


def main() -> None:
    from layerscope.data.prepare import load_classes, load_split
    from layerscope.train.features import load_frozen_features
    from layerscope.train.fit import FitSettings, enable_determinism, fit
    from layerscope.train.models import split_at_block
    from layerscope.train.optimizers import make_optimizer
    from layerscope.train.run import build_model
    from layerscope.train.runs import parse_run_id

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "momentum", "nag"])
    parser.add_argument("--rates", nargs="+", type=float, default=[1e-4, 3e-4, 1e-3, 3e-3])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    validate(config, "workflow/schemas/config.schema.yaml", set_default=True)
    training = config["training"]
    results = Path("results") / config["experiment"]
    data_dir = results / "data"
    labels = {split: load_split(data_dir, split)[1] for split in ("train", "val")}
    features = load_frozen_features(
        results / "features" / f"block{args.depth}.npy",
        args.depth,
        training["weights"],
        training["mixed_precision"],
    )
    classes = load_classes(data_dir)
    shape = load_split(data_dir, "val")[0].shape[1:]
    print(f"{'optimizer':>9} {'lr':>8} {'best val acc':>12} {'val loss':>9} {'epoch':>5} {'seconds':>7}")
    for optimizer in args.optimizers:
        for rate in args.rates:
            settings = copy.deepcopy(training)
            spec = parse_run_id(f"vgg16-freeze{args.depth}-{optimizer}", settings)
            enable_determinism(config["seed"])
            model = build_model(spec, shape, len(classes), settings)
            _, tail = split_at_block(model, args.depth)
            tail.compile(
                optimizer=make_optimizer(optimizer, rate, settings["momentum"]),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            fit_settings = FitSettings(
                epochs=args.epochs,
                batch_size=settings["batch_size"],
                seed=config["seed"],
                class_weight=settings["class_weight"],
            )
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as state:
                history, _ = fit(
                    tail,
                    (features["train"], labels["train"]),
                    (features["val"], labels["val"]),
                    fit_settings,
                    len(classes),
                    Path(state),
                    verbose=0,
                )
            best = history.loc[history["val_accuracy"].idxmax()]
            print(
                f"{optimizer:>9} {rate:>8.0e} {best['val_accuracy']:>12.3f} {best['val_loss']:>9.3f} "
                f"{int(best['epoch']):>5} {time.perf_counter() - started:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
