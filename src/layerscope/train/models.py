"""The study's networks: LeNet-5 from scratch and VGG-16 with a replaced classifier.

LeNet-5 follows LeCun et al. 1998 ("Gradient-based learning applied to document
recognition"); VGG-16 follows Simonyan and Zisserman 2014 ("Very Deep Convolutional
Networks for Large-Scale Image Recognition", arXiv:1409.1556).

Both are built flat (every layer directly in ``model.layers``) so Grad-CAM, CAM and
the weight recorder can reach any layer by name, and both end in a float32 softmax
so they also run under the ``mixed_bfloat16`` policy.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import keras
from keras import layers, ops

from layerscope.core.blocks import block_of
from layerscope.core.errors import LayerscopeError, rerun_hint
from layerscope.train.pretrained import load_vgg16_weights
from layerscope.train.runs import ACTIVATIONS

LENET_MIN_SIZE = 19  # c1 -4, s2 -1, c3 -4, s4 halves: c5's 5x5 needs (H - 9) // 2 >= 5
VGG_HEADS = ("fc", "gap")
VGG_BLOCKS = 5
# (filters, convolutions) per block, as in keras.applications.VGG16.
_VGG16_LAYOUT = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
# Caffe-style ImageNet channel means, BGR order (keras.applications "caffe" mode).
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)


def caffe_preprocess(inputs):
    """Raw RGB pixels (0..255) -> BGR minus the ImageNet channel means, inside the model.

    Keeping the preprocessing in the graph means saved models, explanations and gradient
    ascent all take plain pixel images. It is built from Keras' own parts (a channel flip
    op, then a ``Rescaling`` layer named ``preprocess`` that adds the negated means), so a
    saved ``model.keras`` loads with plain ``keras.models.load_model``, without importing
    layerscope; ``x * 1 + (-mean)`` is bit for bit ``x - mean``.

    Args:
        inputs: the model's (N, H, W, 3) RGB input tensor.

    Returns:
        The output of the ``preprocess`` layer.
    """
    bgr = ops.flip(inputs, axis=-1)
    return layers.Rescaling(1.0, offset=[-m for m in IMAGENET_MEAN_BGR], name="preprocess")(bgr)


def _check_common(input_shape: Sequence[int], num_classes: int) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise LayerscopeError(
            f"input_shape must be (height, width, channels) of positive integers, got {input_shape!r}"
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise LayerscopeError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return shape


def _classifier_output(x, num_classes: int):
    """Linear logits, then a float32 softmax (stable under mixed precision)."""
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def lenet5(input_shape: Sequence[int], num_classes: int, activation: str = "tanh") -> keras.Model:
    """LeNet-5 (LeCun et al. 1998) exactly as the study lays it out (note S2 pools with stride 1).

    Args:
        input_shape: (height, width, channels) of the raw 0..255 images.
        num_classes: the number of classes, at least 2.
        activation: "tanh" (as in LeCun et al.) or "relu".

    Returns:
        An uncompiled, randomly initialised model ending in ``logits`` and a float32 softmax.

    Raises:
        LayerscopeError: a bad input shape, fewer than 2 classes, or an unknown activation.
    """
    shape = _check_common(input_shape, num_classes)
    if activation not in ACTIVATIONS:
        raise LayerscopeError(f"LeNet-5 activation must be one of {ACTIVATIONS}, got {activation!r}")
    if min(shape[:2]) < LENET_MIN_SIZE:
        raise LayerscopeError(
            f"LeNet-5 needs input at least {LENET_MIN_SIZE}x{LENET_MIN_SIZE} (three 5x5 convolutions, "
            f"a stride-1 and a stride-2 pooling), got input_shape {shape}"
        )
    inputs = keras.Input(shape=shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="preprocess")(inputs)
    x = layers.Conv2D(6, 5, activation=activation, name="c1")(x)
    x = layers.AveragePooling2D(2, strides=1, name="s2")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = layers.AveragePooling2D(2, strides=2, name="s4")(x)
    x = layers.Conv2D(120, 5, activation=activation, name="c5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation=activation, name="f6")(x)
    return keras.Model(inputs, _classifier_output(x, num_classes), name=f"lenet5_{activation}")


def _check_freeze(k: int) -> None:
    if not isinstance(k, int) or not 0 <= k <= VGG_BLOCKS:
        raise LayerscopeError(f"freeze_blocks must be an integer in 0..{VGG_BLOCKS}, got {k!r}")


def set_frozen_blocks(model: keras.Model, k: int) -> None:
    """Freeze VGG blocks 1..k, make blocks k+1..5 trainable; other layers untouched.

    Recompile the model afterwards: Keras reads ``trainable`` at compile time.

    Args:
        model: a model whose VGG layers are named ``block<n>_...``; changed in place.
        k: how many blocks to freeze, 0..5.

    Raises:
        LayerscopeError: ``k`` is not an integer in 0..5.
    """
    _check_freeze(k)
    for layer in model.layers:
        block = block_of(layer.name)
        if block is not None:
            layer.trainable = block > k


def vgg16(
    input_shape: Sequence[int],
    num_classes: int,
    weights: str | os.PathLike = "hed-bsds500",
    freeze_blocks: int = 0,
    head: str = "fc",
    dense_units: int = 256,
    dropout: float = 0.5,
) -> keras.Model:
    """VGG-16 conv base (Simonyan and Zisserman 2014, arXiv:1409.1556) with a new classifier head.

    ``head="fc"``: Flatten -> batch norm -> fc1 (ReLU) -> dropout -> logits, the transfer models.
    ``head="gap"``: global average pooling of ``block5_conv3`` -> logits, the layout
    CAM needs. As in Zhou et al. (2016, arXiv:1512.04150) GAP sits on the last conv layer,
    with no ``block5_pool`` before it, so CAM keeps that layer's resolution (H/16: 4x4 at
    64 px, 14x14 at 224) instead of halving it; the GAP model has no layer ``block5_pool``.

    Args:
        input_shape: (height, width, 3) of the raw 0..255 RGB images, at least 32x32.
        num_classes: the number of classes, at least 2.
        weights: the conv-base weights, a name or a file (see
            :func:`layerscope.train.pretrained.load_vgg16_weights`; "none": random).
        freeze_blocks: how many blocks, from the input, to freeze (0..5).
        head: "fc" or "gap".
        dense_units: width of the fc head's hidden layer (unused by "gap").
        dropout: dropout rate of the fc head (unused by "gap").

    Returns:
        An uncompiled flat model with Caffe preprocessing inside, ending in ``logits`` and a
        float32 softmax.

    Raises:
        LayerscopeError: a bad input shape, fewer than 2 classes, an unknown head, a freeze
            depth outside 0..5, or weights that cannot be loaded.
    """
    shape = _check_common(input_shape, num_classes)
    if shape[2] != 3 or min(shape[:2]) < 32:
        raise LayerscopeError(f"VGG-16 needs RGB input at least 32x32 (five 2x2 poolings), got input_shape {shape}")
    if head not in VGG_HEADS:
        raise LayerscopeError(f"VGG-16 head must be one of {VGG_HEADS}, got {head!r}")
    _check_freeze(freeze_blocks)

    inputs = keras.Input(shape=shape, name="image")
    x = caffe_preprocess(inputs)
    for block, (filters, convs) in enumerate(_VGG16_LAYOUT, start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(
                filters,
                3,
                padding="same",
                activation="relu",
                name=f"block{block}_conv{i}",
            )(x)
        if head == "fc" or block < VGG_BLOCKS:  # GAP reads block5_conv3 itself
            x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if head == "fc":
        x = layers.Flatten(name="flatten")(x)
        # Caffe-scale conv features reach the hundreds; standardising them keeps the
        # classifier well conditioned for plain SGD, as a linear probe's scaler does.
        # Momentum 0.9 (not Keras' 0.99): the moving statistics used at inference must
        # catch up within tens of steps, since short runs have only a few hundred and the
        # features move while blocks before the head train.
        x = layers.BatchNormalization(momentum=0.9, name="head_norm")(x)
        x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, _classifier_output(x, num_classes), name=f"vgg16_{head}")
    load_vgg16_weights(model, weights)
    set_frozen_blocks(model, freeze_blocks)
    return model


def split_at_block(model: keras.Model, k: int) -> tuple[keras.Model, keras.Model]:
    """Split a flat VGG-16 after ``block{k}_pool`` into (feature_extractor, tail).

    The tail calls the very same layer objects as ``model``, so fitting the tail on
    cached block-k features trains ``model`` itself. Needs the layer chain to be
    linear after the cut, which holds for models built by :func:`vgg16`.

    Args:
        model: a flat VGG-16 with an fc head (the GAP model has no ``block5_pool``).
        k: the block after whose pooling to cut, 1..5.

    Returns:
        ``(feature_extractor, tail)``: pixels -> block-k features, and features -> probabilities.

    Raises:
        LayerscopeError: ``k`` outside 1..5, no ``block{k}_pool`` layer, or a non-linear chain after it.
    """
    if not isinstance(k, int) or not 1 <= k <= VGG_BLOCKS:
        raise LayerscopeError(f"split block must be an integer in 1..{VGG_BLOCKS}, got {k!r}")
    try:
        cut = model.get_layer(f"block{k}_pool")
    except ValueError as err:
        raise LayerscopeError(f"model {model.name!r} has no layer 'block{k}_pool' to split at") from err
    extractor = keras.Model(model.input, cut.output, name=f"{model.name}_upto_block{k}")

    tail_input = keras.Input(shape=tuple(cut.output.shape[1:]), name=f"block{k}_features")
    x, previous = tail_input, cut
    for layer in model.layers[model.layers.index(cut) + 1 :]:
        if layer.input is not previous.output:
            raise LayerscopeError(
                f"model {model.name!r} is not a simple chain after block{k}_pool "
                f"(layer {layer.name!r} does not take {previous.name!r}'s output)"
            )
        x, previous = layer(x), layer
    return extractor, keras.Model(tail_input, x, name=f"{model.name}_after_block{k}")


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a run's ``model.keras`` (plain Keras can too: the models hold only Keras layers).

    A damaged file (cut short by a killed job or a full disk) is named together with the
    command that rewrites it, rather than Keras' misleading "File not found".

    Args:
        path: the ``model.keras`` file.

    Returns:
        The model, uncompiled.

    Raises:
        LayerscopeError: the file is missing or not a readable Keras model.
    """
    if not Path(path).is_file():
        raise LayerscopeError(f"model file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        damaged = str(err)
    if damaged is None:
        try:
            return keras.models.load_model(path, compile=False)
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            damaged = str(err)
    raise LayerscopeError(f"{path} is not a readable Keras model ({damaged}); {rerun_hint(path)}")
