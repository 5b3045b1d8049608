"""Small procedurally generated image datasets (numpy only, nothing is downloaded).

* :func:`digits` — 28×28 grey-scale, digit-like glyphs (MNIST-sized, for the AE and the
  VAE of the slides, whose input is 784 values in [0, 1]): seven-segment digits 0–9 drawn as
  anti-aliased strokes with random size, position, slant and stroke width.
* :func:`shapes` — 64×64 RGB images (the DCGAN's size) of one to three coloured circles,
  squares and triangles, randomly placed, sized and rotated, on a shaded background.

Both are deterministic functions of ``seed`` and return ``uint8`` arrays (as image datasets
are stored); :func:`to_unit` / :func:`to_tanh` give the float ranges the models expect.
:func:`batch_indices` samples minibatches statelessly from ``(seed, step)``, so a resumed
run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np

__all__ = ["digits", "shapes", "to_unit", "to_tanh", "batch_indices", "SEGMENTS"]

# Seven-segment glyphs on the unit box (x right, y down): each segment is a pair of points.
_P = {"tl": (0.0, 0.0), "tr": (1.0, 0.0), "ml": (0.0, 0.5), "mr": (1.0, 0.5),
      "bl": (0.0, 1.0), "br": (1.0, 1.0)}
_SEG_ENDS = {"a": ("tl", "tr"), "b": ("tr", "mr"), "c": ("mr", "br"), "d": ("bl", "br"),
             "e": ("ml", "bl"), "f": ("tl", "ml"), "g": ("ml", "mr")}
#: which segments each digit lights
SEGMENTS = {0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc", 5: "afgcd",
            6: "afgecd", 7: "abc", 8: "abcdefg", 9: "abcdfg"}
_ORDER = "abcdefg"
_SEG_A = np.array([_P[_SEG_ENDS[s][0]] for s in _ORDER], np.float32)  # (7, 2)
_SEG_B = np.array([_P[_SEG_ENDS[s][1]] for s in _ORDER], np.float32)  # (7, 2)
_LIT = np.array([[s in SEGMENTS[d] for s in _ORDER] for d in range(10)])  # (10, 7)


def _check_n(n, name="n"):
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def digits(n: int = 4096, *, seed: int = 0, size: int = 28, chunk: int = 512):
    """``n`` digit-like glyphs: ``(images (n, size, size) uint8, labels (n,) int64)``.

    Deterministic in ``seed``. Each glyph: a random digit's seven-segment strokes, box
    height 45–65 % of the image, width 45–75 % of the height, slant ±0.25, stroke
    half-width 0.9–1.8 px (at 28 px), centred with a ±2 px jitter.
    """
    n = _check_n(n)
    rng = np.random.default_rng([seed, 28])
    labels = rng.integers(0, 10, n)
    s = size / 28.0
    h = rng.uniform(0.45, 0.65, n) * size
    w = h * rng.uniform(0.45, 0.75, n)
    slant = rng.uniform(-0.25, 0.25, n)
    cx = size / 2 + rng.uniform(-2, 2, n) * s
    cy = size / 2 + rng.uniform(-2, 2, n) * s
    half = rng.uniform(0.9, 1.8, n) * s
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    pix = np.stack([xs.ravel(), ys.ravel()], -1)  # (P, 2) pixel centres (x, y)
    out = np.empty((n, size * size), np.uint8)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))

        def place(unit):  # unit-box points (7, 2) → pixel coordinates (m, 7, 2)
            u, v = unit[None, :, 0] - 0.5, unit[None, :, 1] - 0.5
            x = cx[sl, None] + u * w[sl, None] - slant[sl, None] * v * h[sl, None]
            y = cy[sl, None] + v * h[sl, None]
            return np.stack([x, y], -1).astype(np.float32)

        a, b = place(_SEG_A), place(_SEG_B)                         # (m, 7, 2)
        ab = b - a
        ap = pix[None, None] - a[:, :, None]                         # (m, 7, P, 2)
        t = np.clip(np.einsum("mspk,msk->msp", ap, ab) / np.sum(ab * ab, -1)[..., None], 0, 1)
        d = np.linalg.norm(ap - t[..., None] * ab[:, :, None], axis=-1)  # (m, 7, P)
        d = np.where(_LIT[labels[sl]][:, :, None], d, np.inf).min(axis=1)  # (m, P)
        ink = np.clip(half[sl, None] - d + 0.5, 0.0, 1.0)            # anti-aliased edge
        out[sl] = np.round(ink * 255).astype(np.uint8)
    return out.reshape(n, size, size), labels


def _coverage(signed_dist):
    return np.clip(0.5 - signed_dist, 0.0, 1.0)  # 1 inside, 0 outside, a 1 px ramp


def shapes(n: int = 2048, *, seed: int = 0, size: int = 64, max_shapes: int = 3,
           chunk: int = 256):
    """``n`` RGB images (n, size, size, 3) ``uint8`` of 1..``max_shapes`` coloured shapes.

    Deterministic in ``seed``. Background: a random colour with a linear shade. Shapes
    (later ones drawn over earlier ones): circles, squares and equilateral triangles,
    radius 12–30 % of the image, random rotation, position and saturated colour.
    """
    n = _check_n(n)
    rng = np.random.default_rng([seed, 64])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    out = np.empty((n, size, size, 3), np.uint8)
    count = rng.integers(1, max_shapes + 1, n)
    bg = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    shade_dir = rng.uniform(0, 2 * np.pi, n)
    shade_amp = rng.uniform(0.0, 0.3, n)
    kind = rng.integers(0, 3, (n, max_shapes))            # 0 circle, 1 square, 2 triangle
    radius = rng.uniform(0.12, 0.30, (n, max_shapes)) * size
    centre = rng.uniform(0.2, 0.8, (n, max_shapes, 2)) * size
    angle = rng.uniform(0, 2 * np.pi, (n, max_shapes))
    hue = rng.uniform(0, 1, (n, max_shapes))
    colour = _hsv_to_rgb(hue, rng.uniform(0.6, 1.0, hue.shape), rng.uniform(0.6, 1.0, hue.shape))
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        m = sl.stop - sl.start
        proj = ((xs - size / 2)[None] * np.cos(shade_dir[sl])[:, None, None]
                + (ys - size / 2)[None] * np.sin(shade_dir[sl])[:, None, None]) / size
        img = bg[sl, None, None, :] * (1 + shade_amp[sl, None, None, None] * proj[..., None])
        img = np.clip(img, 0, 1)                                       # (m, H, W, 3)
        for k in range(max_shapes):
            dx = xs[None] - centre[sl, k, 0, None, None]                # (m, H, W)
            dy = ys[None] - centre[sl, k, 1, None, None]
            r = radius[sl, k, None, None]
            th = angle[sl, k, None, None]
            circle = np.hypot(dx, dy) - r
            # polygon with j sides: the largest projection on its edge normals vs. apothem
            square = np.max([dx * np.cos(th + j * np.pi / 2) + dy * np.sin(th + j * np.pi / 2)
                             for j in range(4)], axis=0) - r / np.sqrt(2)
            tri = np.max([dx * np.cos(th + j * 2 * np.pi / 3) + dy * np.sin(th + j * 2 * np.pi / 3)
                          for j in range(3)], axis=0) - r / 2
            kk = kind[sl, k, None, None]
            dist = np.where(kk == 0, circle, np.where(kk == 1, square, tri))
            cov = _coverage(dist) * (k < count[sl])[:, None, None]      # (m, H, W)
            img = img * (1 - cov[..., None]) + colour[sl, k][:, None, None, :] * cov[..., None]
        out[sl] = np.round(img * 255).astype(np.uint8).reshape(m, size, size, 3)
    return out


def _hsv_to_rgb(h, s, v):
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], -1).astype(np.float32)


def to_unit(images, dtype=np.float32):
    """uint8 → [0, 1] floats (the AE/VAE inputs; BCE targets must lie in [0, 1])."""
    return np.asarray(images).astype(dtype) / 255


def to_tanh(images, dtype=np.float32):
    """uint8 → [−1, 1] floats (the range of the DCGAN generator's tanh)."""
    return np.asarray(images).astype(dtype) / 127.5 - 1


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices of minibatch ``step`` (0-based): epochs are fresh permutations drawn from
    ``(seed, epoch)``; the last incomplete batch of an epoch is dropped. Stateless, so a
    run resumed at step ``k`` continues with the batches of the uninterrupted run."""
    n, batch_size = _check_n(n), _check_n(batch_size, "batch_size")
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the dataset ({n})")
    per_epoch = n // batch_size
    epoch, i = divmod(int(step), per_epoch)
    perm = np.random.default_rng([seed, 7, epoch]).permutation(n)
    return perm[i * batch_size:(i + 1) * batch_size]
