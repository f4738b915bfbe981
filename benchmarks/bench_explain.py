"""How much batched, compiled prediction buys LIME, and what one Grad-CAM pass costs.

Prints figures; it is not a test. LIME runs on the same small VGG-like CNN with the
same seed (so the same superpixels and the same perturbed samples) three ways:
lime's default of 10 images per call with the usual ``model.predict`` classifier,
10 per call with our compiled forward pass, and ours (large batches, compiled).
Each figure is the best of ``--repeats`` runs: the machine may be shared.
Usage: python benchmarks/bench_explain.py [--size 64] [--samples 1000] [--images 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from lime.lime_image import LimeImageExplainer  # noqa: E402
from lime.wrappers.scikit_image import SegmentationAlgorithm  # noqa: E402

from layerscope.explain.gradcam import GradCAM  # noqa: E402
from layerscope.explain.lime_method import LIME  # noqa: E402


def small_vgg(size: int, num_classes: int = 4) -> keras.Model:
    """Three VGG blocks (32-64-128 filters), GAP head, the project's layer names."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    for block, filters in enumerate((32, 64, 128), start=1):
        for i in (1, 2):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))


def vgg16(size: int, num_classes: int = 4) -> keras.Model:
    """Full VGG-16 conv base (random weights), built flat with a GAP head."""
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(base.input, keras.layers.Activation("softmax", name="probabilities")(x))


def best_time(fn, repeats: int):
    """The last result and the fastest of ``repeats`` wall-clock timings."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def lime_with_predict(model: keras.Model, image: np.ndarray, samples: int) -> np.ndarray:
    """lime as its tutorials use it: default batch_size=10, ``model.predict`` per call."""
    explanation = LimeImageExplainer(random_state=0).explain_instance(
        image.astype(np.uint8),
        lambda batch: model.predict(batch.astype(np.float32), verbose=0),
        top_labels=2,
        hide_color=0,
        num_samples=samples,
        segmentation_fn=SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=0),
    )
    lookup = np.zeros(explanation.segments.max() + 1)
    for segment, weight in explanation.local_exp[explanation.top_labels[0]]:
        lookup[segment] = weight
    return lookup[explanation.segments]  # the predicted class's weights, per pixel


def bench_lime(args, images: np.ndarray) -> None:
    model = small_vgg(args.size)
    ours = LIME(model, args.batch_size, args.samples, seed=0, progress=False)
    ten = LIME(model, 10, args.samples, seed=0, progress=False)
    for explainer in (ours, ten):
        explainer.explain(images[:1])  # trace the forward pass outside the timings
    n = len(images)
    evidence, t_ours = best_time(lambda: ours.evidence(images), args.repeats)
    same, t_ten = best_time(lambda: ten.evidence(images), args.repeats)
    tutorial, t_predict = best_time(
        lambda: [lime_with_predict(model, image, args.samples) for image in images], args.repeats
    )
    print(f"LIME, small VGG-like CNN at {args.size}px, {args.samples} samples, {n} images:")
    print(f"  lime default (batch_size=10, model.predict): {t_predict / n:6.2f} s/image")
    print(f"  batch_size=10, compiled forward:            {t_ten / n:6.2f} s/image")
    print(f"  ours (batch_size={args.batch_size}, compiled forward):    {t_ours / n:6.2f} s/image")
    print(f"  speed-up vs lime default: {t_predict / t_ours:.1f}x; from batch size alone: {t_ten / t_ours:.1f}x")
    versus_default = np.abs(np.stack(tutorial) - evidence["weights"][:, 0]).max()
    versus_ten = np.abs(same["weights"] - evidence["weights"]).max()
    print(
        f"  same samples, same answer: max |weight difference| vs lime default "
        f"{versus_default:.1e}, vs batch 10 {versus_ten:.1e}"
    )


def bench_gradcam(args, images: np.ndarray) -> None:
    size = args.size
    model = vgg16(size)
    explainer = GradCAM(model, "block5_conv3", batch_size=len(images))
    _, first = best_time(lambda: explainer.explain(images), 1)
    _, warm = best_time(lambda: explainer.explain(images), args.repeats)
    print(f"Grad-CAM, VGG-16 at {size}px, {len(images)} images in one pass (block5_conv3):")
    print(f"  first call (with tracing): {first:.2f} s; warm call: {warm:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # Smooth random images: blocky structure so quickshift finds realistic superpixels.
    coarse = rng.uniform(0, 255, size=(32, args.size // 8, args.size // 8, 3))
    images = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    images = np.clip(images + rng.normal(0, 10, images.shape), 0, 255).astype(np.float32)
    bench_lime(args, images[: args.images])
    bench_gradcam(args, images)


if __name__ == "__main__":
    main()
