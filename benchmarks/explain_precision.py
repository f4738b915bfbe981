"""Whether a run's Grad-CAM maps depend on the precision they were computed in.

Under ``mixed_precision: auto`` an AMX CPU trains and explains in bfloat16. This loads a
finished run's model as it was saved (its layers' policy) and a float32 twin with the very
same weights, computes Grad-CAM at every block the explain stage maps, for the images and
targets the explain stage used (``maps.npz``), and prints per layer: each image's map
maximum in both, which images are all zero in either, and the correlation of the two maps.
A map that is zero in both is the model's, not the arithmetic's.

Usage: ``python benchmarks/explain_precision.py results/default vgg16-finetune``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def float32_twin(model):
    """The same network and weights with every layer computing in float32."""
    import keras

    def plain(node):
        if isinstance(node, dict):
            is_policy = isinstance(node.get("dtype"), dict) and node["dtype"].get("class_name") == "DTypePolicy"
            return {k: ("float32" if k == "dtype" and is_policy else plain(v)) for k, v in node.items()}
        return [plain(v) for v in node] if isinstance(node, list) else node

    twin = keras.Model.from_config(plain(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a finished run's results folder, e.g. results/default")
    parser.add_argument("run", help="an explained run, e.g. vgg16-finetune")
    args = parser.parse_args(argv)

    from layerscope.explain.gradcam import GradCAM
    from layerscope.train.models import load_model

    stored = np.load(args.results / "explain" / args.run / "maps.npz")
    layers = sorted(key.split("/", 1)[1] for key in stored.files if key.startswith("gradcam/"))
    images = np.load(args.results / "data" / "test_images.npy", mmap_mode="r")[stored["indices"]]
    model = load_model(args.results / "runs" / args.run / "model.keras")
    policy = model.get_layer(layers[0]).dtype_policy.name
    maps = {
        name: GradCAM(m, layers, batch_size=len(images)).explain_layers(images, stored["predicted"])
        for name, m in ((policy, model), ("float32", float32_twin(model)))
    }
    print(f"{args.run}: {len(images)} images, saved policy {policy} against a float32 twin of the same weights")
    for layer in layers:
        a, b = (maps[name][layer].reshape(len(images), -1) for name in (policy, "float32"))
        zero_a, zero_b = np.flatnonzero(a.max(1) == 0), np.flatnonzero(b.max(1) == 0)
        both = (a.max(1) > 0) & (b.max(1) > 0)
        r = [float(np.corrcoef(x, y)[0, 1]) for x, y in zip(a[both], b[both])]
        print(
            f"{layer}: all-zero maps {zero_a.tolist()} in {policy}, {zero_b.tolist()} in float32; "
            f"correlation of the others {min(r, default=float('nan')):.3f}-{max(r, default=float('nan')):.3f}; "
            f"maxima {[round(float(v), 4) for v in a.max(1)]} against {[round(float(v), 4) for v in b.max(1)]}"
        )


if __name__ == "__main__":
    main()
