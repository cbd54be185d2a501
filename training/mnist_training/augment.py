"""Random distortions of training batches: the handwriting MNIST's writers did not produce.

The robust recipe trains on every digit seen a little differently each epoch: a small affine
warp (rotation, scale, aspect, shear, shift), a thicker or thinner stroke, a soft blur, and a
contrast and gamma change (sensor noise is there too, off by default: it cost accuracy). It all runs in TensorFlow on whole
batches inside the input pipeline, so the exported model is the plain convnet (nothing of this
is in it) and the pipeline keeps up with training on two cores.

Randomness is stateless and keyed by (seed, step), so a run is reproducible with the same seed.
The strengths are plain data (:class:`Distortions`) so that each one can be measured alone::

    >>> aug = Distortions().batch_fn(seed=42)
    >>> warped = aug(step, images)            # images: float32 [B, 28, 28, 1] in [0, 1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorflow as tf

# MNIST centres each digit's mass at pixel (14, 14): warps pivot there.
_PIVOT = 14.0


@dataclass(frozen=True)
class Distortions:
    """How strong each distortion is; 0 turns one off."""

    rotate_degrees: float = 10.0
    scale: float = 0.10  # the digit's size varies by ± this share
    aspect: float = 0.15  # width vs height, ± this share
    shear: float = 0.15  # horizontal shear, ± this slope
    shift_pixels: float = 2.0
    stroke_probability: float = 0.5  # thicken or thin the stroke (half each)
    blur_probability: float = 0.3
    contrast_low: float = 0.8  # peak ink level drawn from [contrast_low, 1]
    gamma: float = 0.2  # pixel ** exp(± this)
    noise_std: float = 0.0  # at most; drawn per image from [0, noise_std]

    def batch_fn(self, seed: int) -> Any:
        """A function ``(step, images) → distorted images`` for ``tf.data``'s ``map``."""
        import tensorflow as tf

        def distort(step: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
            keys = _keys(seed, step)
            out = _warp(images, self, keys[0])
            out = _stroke(out, self.stroke_probability, keys[1])
            out = _blur(out, self.blur_probability, keys[2])
            out = _tone(out, self, keys[3])
            return tf.clip_by_value(out, 0.0, 1.0)

        return distort


def _keys(seed: int, step: Any) -> list[Any]:
    import tensorflow as tf

    base = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
    return [tf.random.experimental.stateless_fold_in(base, i) for i in range(4)]


def _uniform(key: Any, n: Any, low: float, high: float, index: int) -> Any:
    import tensorflow as tf

    sub = tf.random.experimental.stateless_fold_in(key, index)
    return tf.random.stateless_uniform([n], sub, minval=low, maxval=high)


def _warp(images: Any, d: Distortions, key: Any) -> Any:
    """One affine map per image, from output pixel to input pixel, pivoting at (14, 14)."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    theta = _uniform(key, n, -1.0, 1.0, 0) * (d.rotate_degrees * math.pi / 180.0)
    # Sampling the inverse map: a factor > 1 here makes the drawn digit smaller.
    scale = tf.exp(_uniform(key, n, -1.0, 1.0, 1) * math.log1p(d.scale))
    aspect = tf.exp(_uniform(key, n, -1.0, 1.0, 2) * math.log1p(d.aspect))
    shear = _uniform(key, n, -d.shear, d.shear, 3) if d.shear else tf.zeros([n])
    tx = _uniform(key, n, -d.shift_pixels, d.shift_pixels, 4) if d.shift_pixels else tf.zeros([n])
    ty = _uniform(key, n, -d.shift_pixels, d.shift_pixels, 5) if d.shift_pixels else tf.zeros([n])
    sx, sy = scale * aspect, scale / aspect
    cos, sin = tf.cos(theta), tf.sin(theta)
    # M = rotation · shear · diag(sx, sy); input = M (output − pivot) + pivot + shift.
    a0, a1 = cos * sx, (cos * shear - sin) * sy
    b0, b1 = sin * sx, (sin * shear + cos) * sy
    a2 = _PIVOT - a0 * _PIVOT - a1 * _PIVOT + tx
    b2 = _PIVOT - b0 * _PIVOT - b1 * _PIVOT + ty
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _stroke(images: Any, probability: float, key: Any) -> Any:
    """Thicker (grey dilation) or thinner (grey erosion) strokes, blended by a random share."""
    import tensorflow as tf

    if probability <= 0:
        return images
    n = tf.shape(images)[0]
    pick = _uniform(key, n, 0.0, 1.0, 0)
    share = tf.reshape(_uniform(key, n, 0.3, 1.0, 1), [-1, 1, 1, 1])
    thicken = tf.reshape(tf.cast(pick < probability / 2, tf.float32), [-1, 1, 1, 1])
    thinned = tf.reshape(
        tf.cast((pick >= probability / 2) & (pick < probability), tf.float32), [-1, 1, 1, 1]
    )
    out = images + thicken * share * (_dilate3(images) - images)
    # Thinning a faint stroke can erase it; keep half the original where erosion would empty it.
    return out + thinned * share * (tf.maximum(_erode2(images), 0.5 * images) - images)


# Shifted slices instead of max_pool / conv2d: with stride 1 on one channel those kernels are
# ten times slower on the CPU than these few element-wise ops over a padded batch.
def _dilate3(images: Any) -> Any:
    import tensorflow as tf

    p = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = tf.maximum(tf.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    return tf.maximum(tf.maximum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _erode2(images: Any) -> Any:
    import tensorflow as tf

    p = tf.pad(images, [[0, 0], [0, 1], [0, 1], [0, 0]])
    rows = tf.minimum(p[:, :, :-1], p[:, :, 1:])
    return tf.minimum(rows[:, :-1], rows[:, 1:])


def _blur(images: Any, probability: float, key: Any) -> Any:
    """A 3×3 binomial blur (a soft pen, an out-of-focus photo) on a share of the batch."""
    import tensorflow as tf

    if probability <= 0:
        return images
    n = tf.shape(images)[0]
    p = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = 0.25 * p[:, :, :-2] + 0.5 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]
    blurred = 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]
    chosen = _uniform(key, n, 0.0, 1.0, 0) < probability
    return images + tf.reshape(tf.cast(chosen, tf.float32), [-1, 1, 1, 1]) * (blurred - images)


def _tone(images: Any, d: Distortions, key: Any) -> Any:
    """Gamma, a lower peak (faint ink) and a little noise on the dark background."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    shape = [-1, 1, 1, 1]
    gamma = tf.reshape(tf.exp(_uniform(key, n, -d.gamma, d.gamma, 0)), shape)
    peak = tf.reshape(_uniform(key, n, d.contrast_low, 1.0, 1), shape)
    out = tf.pow(images, gamma) * peak
    if d.noise_std <= 0:
        return out
    std = tf.reshape(_uniform(key, n, 0.0, d.noise_std, 2), shape)
    noise_key = tf.random.experimental.stateless_fold_in(key, 3)
    return out + std * tf.random.stateless_normal(tf.shape(images), noise_key)


def dataset(
    x: Any, y: Any, batch_size: int, seed: int, distortions: Distortions | None
) -> tf.data.Dataset:
    """Endless shuffled batches of ``x`` (float32 [N, 28, 28, 1]) and ``y``, distorted.

    Endless so that the step count runs on across epochs and keys each batch's distortions
    afresh; ``fit`` gets ``steps_per_epoch`` instead.
    """
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat()
    data = data.batch(batch_size)
    if distortions is not None:
        distort = distortions.batch_fn(seed)
        data = data.enumerate().map(
            lambda step, batch: (distort(step, batch[0]), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return data.prefetch(tf.data.AUTOTUNE)
