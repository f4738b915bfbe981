"""Learning rates and class weighting chosen on the validation split only (prints a table).

For each optimizer, learning rate and class weighting of a grid, trains a run for a few
epochs and prints its best validation accuracy, balanced accuracy, weighted F1 and loss.
The test split is never read. How the default config's settings were chosen from this
table is written down in config/README.md ("How the settings were chosen").

- ``--family freeze``: a freeze-k run's trainable part on the experiment's shared
  frozen-feature cache, so a sweep costs no feature extraction.
- ``--family scratch``: the whole VGG-16 from random weights.
- ``--family finetune``: the whole network unfrozen, starting from ``--start-from``
  (the trained transfer run, as the pipeline's fine-tuning does).

Usage (after the data stage and, for freeze, ``snakemake <results>/features/block<k>.npy``):
    python benchmarks/select_learning_rates.py --config config/config.yaml --depth 4 \
        --optimizers sgd momentum nag --rates 1e-4 3e-4 1e-3 3e-3 --epochs 4
    python benchmarks/select_learning_rates.py --family finetune --optimizers momentum \
        --start-from results/default/runs/vgg16-freeze3-momentum/model.keras --rates 1e-5 3e-5 1e-4
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from snakemake.utils import validate  # noqa: E402


def main() -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from layerscope.data.prepare import load_classes, load_split
    from layerscope.train.features import load_frozen_features
    from layerscope.train.fit import FitSettings, enable_determinism, fit
    from layerscope.train.models import split_at_block
    from layerscope.train.optimizers import make_optimizer
    from layerscope.train.run import build_model
    from layerscope.train.runs import parse_run_id

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", help="results/<experiment> to read (default: the config's)")
    parser.add_argument("--family", choices=["freeze", "scratch", "finetune"], default="freeze")
    parser.add_argument("--depth", type=int, default=4, help="frozen blocks (freeze only)")
    parser.add_argument("--start-from", type=Path, help="the model fine-tuning starts from (finetune only)")
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "momentum", "nag"])
    parser.add_argument("--rates", nargs="+", type=float, default=[1e-4, 3e-4, 1e-3, 3e-3])
    parser.add_argument("--class-weights", nargs="+", default=None, help="none and/or balanced (default: config's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="training seeds (default: config's seed)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--patience", type=int, default=None, help="early stopping (default: none, all epochs)")
    args = parser.parse_args()
    if args.family == "finetune" and not args.start_from:
        parser.error("--family finetune needs --start-from")
    config = yaml.safe_load(Path(args.config).read_text())
    validate(config, "workflow/schemas/config.schema.yaml", set_default=True)
    training = config["training"]
    results = Path("results") / (args.experiment or config["experiment"])
    data_dir = results / "data"
    splits = {split: load_split(data_dir, split) for split in ("train", "val")}
    labels = {split: y for split, (_, y) in splits.items()}
    if args.family == "freeze":
        inputs = load_frozen_features(
            results / "features" / f"block{args.depth}.npy",
            args.depth,
            training["weights"],
            training["mixed_precision"],
        )
    else:
        inputs = {split: x.astype(np.float32) for split, (x, _) in splits.items()}
    classes = load_classes(data_dir)
    shape = splits["val"][0].shape[1:]
    weightings = args.class_weights or [training["class_weight"]]
    seeds = args.seeds or [config["seed"]]
    print(f"family {args.family}, {len(labels['train'])} train / {len(labels['val'])} val images, seeds {seeds}")
    print(
        f"{'optimizer':>9} {'lr':>8} {'weights':>8} {'seed':>4} {'val acc':>7} {'bal acc':>7} "
        f"{'val F1w':>7} {'val loss':>8} {'epoch':>5} {'ran':>3} {'seconds':>7}"
    )
    for optimizer in args.optimizers:
        run_id = {
            "freeze": f"vgg16-freeze{args.depth}-{optimizer}",
            "scratch": f"vgg16-scratch-{optimizer}",
            "finetune": "vgg16-finetune",
        }[args.family]
        for rate in args.rates:
            for weighting in weightings:
                for seed in seeds:
                    settings = copy.deepcopy(training)
                    settings["finetune"]["optimizer"] = optimizer
                    spec = parse_run_id(run_id, settings)
                    enable_determinism(seed)
                    model = build_model(spec, shape, len(classes), settings, args.start_from)
                    fitted = split_at_block(model, args.depth)[1] if args.family == "freeze" else model
                    fitted.compile(
                        optimizer=make_optimizer(optimizer, rate, settings["momentum"]),
                        loss="sparse_categorical_crossentropy",
                        metrics=["accuracy"],
                    )
                    fit_settings = FitSettings(
                        epochs=args.epochs,
                        batch_size=settings["batch_size"],
                        seed=seed,
                        patience=args.patience,
                        class_weight=weighting,
                    )
                    started = time.perf_counter()
                    with tempfile.TemporaryDirectory() as state:
                        history, _ = fit(
                            fitted,
                            (inputs["train"], labels["train"]),
                            (inputs["val"], labels["val"]),
                            fit_settings,
                            len(classes),
                            Path(state),
                            verbose=0,
                        )
                    # fit keeps the best-val_loss epoch's weights: score that model on validation
                    predicted = fitted.predict(inputs["val"], batch_size=64, verbose=0).argmax(axis=1)
                    accuracy = np.mean(predicted == labels["val"])
                    best = history.loc[history["val_loss"].idxmin()]
                    print(
                        f"{optimizer:>9} {rate:>8.0e} {weighting:>8} {seed:>4} {accuracy:>7.3f} "
                        f"{balanced_accuracy_score(labels['val'], predicted):>7.3f} "
                        f"{f1_score(labels['val'], predicted, average='weighted'):>7.3f} {best['val_loss']:>8.3f} "
                        f"{int(best['epoch']):>5} {len(history):>3} {time.perf_counter() - started:>7.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
