"""The seed's convnet: its layer list, its Keras build, and its parameter arithmetic.

The layer list is plain data so that ``mnist-train summary`` can explain the model without
importing TensorFlow; :func:`build_model` turns the same list into Keras layers, and a test
checks that both agree with Keras's own count (104,202 parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import keras

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


@dataclass(frozen=True)
class LayerSpec:
    kind: Literal["conv", "pool", "flatten", "dense"]
    size: int = 0  # filters for conv, units for dense, window for pool
    kernel: int = 3


ARCHITECTURE: tuple[LayerSpec, ...] = (
    LayerSpec("conv", 32),
    LayerSpec("pool", 2),
    LayerSpec("conv", 64),
    LayerSpec("pool", 2),
    LayerSpec("conv", 128),
    LayerSpec("flatten"),
    LayerSpec("dense", NUM_CLASSES),
)


@dataclass(frozen=True)
class LayerRow:
    name: str
    output_shape: tuple[int, ...]
    params: int
    arithmetic: str


def explain_layers(
    architecture: tuple[LayerSpec, ...] = ARCHITECTURE,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
) -> list[LayerRow]:
    """Each layer's output shape and parameter count, with the arithmetic behind it."""
    h, w, c = input_shape
    flat: int | None = None
    rows: list[LayerRow] = []
    for spec in architecture:
        if spec.kind == "conv":
            k, f = spec.kernel, spec.size
            params = k * k * c * f + f
            h, w, c = h - k + 1, w - k + 1, f  # 'valid' padding, stride 1
            rows.append(
                LayerRow(
                    f"Conv2D({f}, {k}x{k}, relu)",
                    (h, w, c),
                    params,
                    f"{k}×{k} kernel × {input_c(rows, input_shape)} input channels × {f} filters"
                    f" + {f} biases = {k * k * input_c(rows, input_shape) * f:,} + {f}",
                )
            )
        elif spec.kind == "pool":
            h, w = h // spec.size, w // spec.size
            rows.append(
                LayerRow(
                    f"MaxPooling2D({spec.size}x{spec.size})",
                    (h, w, c),
                    0,
                    "none: it keeps the largest value of each window, nothing is learned",
                )
            )
        elif spec.kind == "flatten":
            flat = h * w * c
            rows.append(
                LayerRow(
                    "Flatten",
                    (flat,),
                    0,
                    f"none: it only lays the {h}×{w}×{c} volume out as one vector of {flat:,}",
                )
            )
        else:
            inputs = flat if flat is not None else c
            params = inputs * spec.size + spec.size
            rows.append(
                LayerRow(
                    f"Dense({spec.size}, softmax)",
                    (spec.size,),
                    params,
                    f"{inputs:,} inputs × {spec.size} units + {spec.size} biases"
                    f" = {inputs * spec.size:,} + {spec.size}",
                )
            )
            flat = spec.size
    return rows


def input_c(rows: list[LayerRow], input_shape: tuple[int, int, int]) -> int:
    """Channels entering the layer after ``rows`` (the previous conv/pool output's depth)."""
    for row in reversed(rows):
        if len(row.output_shape) == 3:
            return row.output_shape[2]
    return input_shape[2]


def format_summary(rows: list[LayerRow]) -> str:
    """The table ``mnist-train summary`` prints."""
    lines = [
        f"Input: {INPUT_SHAPE[0]}×{INPUT_SHAPE[1]}×{INPUT_SHAPE[2]} grayscale, pixels / 255",
        "",
        f"{'layer':<26} {'output shape':<14} {'params':>8}  how",
        "-" * 100,
    ]
    for r in rows:
        shape = "×".join(str(d) for d in r.output_shape)
        lines.append(f"{r.name:<26} {shape:<14} {r.params:>8,}  {r.arithmetic}")
    total = sum(r.params for r in rows)
    lines += ["-" * 100, f"{'total':<26} {'':<14} {total:>8,}  trainable parameters"]
    lines.append(
        "Convolutions use 'valid' padding (each 3×3 kernel trims one pixel per side); "
        "pooling halves height and width, rounding down."
    )
    return "\n".join(lines)


def total_params(architecture: tuple[LayerSpec, ...] = ARCHITECTURE) -> int:
    return sum(r.params for r in explain_layers(architecture))


def build_model(seed: int | None = None) -> keras.Model:
    """The Keras model for :data:`ARCHITECTURE`, weights drawn from ``seed`` when given."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    layers: list[keras.layers.Layer] = [keras.Input(shape=INPUT_SHAPE, name="images")]
    for i, spec in enumerate(ARCHITECTURE, start=1):
        if spec.kind == "conv":
            layers.append(
                keras.layers.Conv2D(spec.size, spec.kernel, activation="relu", name=f"conv{i}")
            )
        elif spec.kind == "pool":
            layers.append(keras.layers.MaxPooling2D(spec.size, name=f"pool{i}"))
        elif spec.kind == "flatten":
            layers.append(keras.layers.Flatten(name="flatten"))
        else:
            layers.append(keras.layers.Dense(spec.size, activation="softmax", name="probabilities"))
    return keras.Sequential(layers, name="mnist_convnet")
