"""A synthetic classification task with ground-truth object masks: cluttered shapes.

Each image holds one object from ten shape classes, at a random position, size (its
bounding circle is 30%-60% of the image side), rotation and colour, on a cluttered
background: a random two-colour gradient, blotchy low-frequency texture, thin distractor
lines and arcs that belong to no class, and pixel noise. Because the generator knows exactly
which pixels the object covers, a saliency map or a localisation can be scored against the
truth (``mask``, ``box``), which ImageNet only offers as boxes.

The classes are chosen to stay distinguishable under any rotation: there is a square but no
diamond (a rotated square), a filled disc and a ring with a large hole, no ellipse next to a
bar. Every shape is defined as a point-in-shape test in its own unit frame (it fits inside
the unit disc) and drawn by supersampling: each pixel is tested at 4 x 4 sub-positions, the
fraction inside is the pixel's coverage ``a``, the pixel becomes ``(1 - a) * background +
a * colour``, and the object's mask is ``a >= 0.5``, i.e. exactly the pixels that are at
least half object colour. Boxes are ``(x0, y0, x1, y1)`` with ``x1``, ``y1`` exclusive.

Everything random comes from one ``numpy.random.Generator``: the same seed gives the same
data, bit for bit.
"""

import math

import numpy as np
from numba import njit

CLASSES = ["circle", "ring", "triangle", "square", "star", "cross", "crescent", "heart",
           "arrow", "L-shape"]

SUPERSAMPLE = 4          # sub-positions per pixel side when drawing the object
MIN_CONTRAST = 120.0     # minimum RGB distance between object colour and local background


# ------------------------------------------------------------------------------ shapes
@njit(cache=True)
def _in_regular_star(u, v, n, r_out, r_in):
    """Inside a star polygon with ``n`` points at radius ``r_out`` (one on the +u axis) and
    ``n`` inner corners at radius ``r_in``; ``r_in = r_out * cos(pi / n)`` is a regular n-gon.

    Fold the angle into one half sector [0, pi / n]; there the edge is the segment from the
    outer corner A = (r_out, 0) to the inner corner B; P is inside if it is on the same side
    of line AB as the origin (cross product (B - A) x (P - A) >= 0).
    """
    sector = 2.0 * math.pi / n
    r = math.sqrt(u * u + v * v)
    phi = math.atan2(v, u) % sector
    if phi > sector / 2.0:
        phi = sector - phi
    px, py = r * math.cos(phi), r * math.sin(phi)
    bx, by = r_in * math.cos(sector / 2.0), r_in * math.sin(sector / 2.0)
    return (bx - r_out) * py - by * (px - r_out) >= 0.0


@njit(cache=True)
def _inside(label, u, v):
    """Whether the point (u, v) of the shape's unit frame is inside shape ``label``.

    All shapes fit in the unit disc. ``v`` points down, as image rows do.
    """
    r2 = u * u + v * v
    if label == 0:                                     # circle
        return r2 <= 1.0
    if label == 1:                                     # ring: hole radius 0.55
        return 0.3025 <= r2 <= 1.0
    if label == 2:                                     # equilateral triangle
        return _in_regular_star(u, v, 3, 1.0, 0.5)
    if label == 3:                                     # square (half diagonal 1)
        return abs(u) <= 0.7071 and abs(v) <= 0.7071
    if label == 4:                                     # five-pointed star
        return _in_regular_star(u, v, 5, 1.0, 0.42)
    if label == 5:                                     # cross: two bars 0.6 wide
        return (abs(u) <= 0.3 and abs(v) <= 0.95) or (abs(v) <= 0.3 and abs(u) <= 0.95)
    if label == 6:                                     # crescent: disc minus offset disc
        return r2 <= 1.0 and (u - 0.5) ** 2 + v * v > 0.7225
    if label == 7:                                     # heart: (x^2 + y^2 - 1)^3 <= x^2 y^3
        x, y = 1.25 * u, 0.25 - 1.25 * v
        return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0
    if label == 8:                                     # arrow: shaft and triangular head
        shaft = -0.95 <= u <= 0.15 and abs(v) <= 0.17
        head = 0.1 <= u <= 0.95 and abs(v) <= 0.6 * (0.95 - u) / 0.85
        return shaft or head
    if label == 9:                                     # L: vertical and bottom bars
        return (-0.65 <= u <= -0.2 and abs(v) <= 0.75) or (0.3 <= v <= 0.75 and abs(u) <= 0.65)
    return False


@njit(cache=True)
def _coverage(label, cx, cy, radius, angle, size, ss):
    """Fraction of each pixel covered by the shape, (size, size) float32.

    Pixel (y, x) is the square [x, x+1) x [y, y+1); it is sampled at the ss x ss points
    (x + (j + 0.5) / ss, y + (i + 0.5) / ss), each mapped into the shape frame by
    translating by -(cx, cy), rotating by -angle and dividing by ``radius``. Only the
    pixels of the shape's bounding square are visited, and a pixel whose four corner samples
    agree is taken as wholly inside or outside (most pixels: the 16 samples are only spent
    along the outline; a sliver narrower than 3/4 pixel between corner samples is missed).
    """
    cov = np.zeros((size, size), np.float32)
    c, s = math.cos(angle), math.sin(angle)
    x_lo, x_hi = max(0, int(cx - radius) - 1), min(size, int(cx + radius) + 2)
    y_lo, y_hi = max(0, int(cy - radius) - 1), min(size, int(cy + radius) + 2)
    for y in range(y_lo, y_hi):
        for x in range(x_lo, x_hi):
            corners = 0
            for i in (0, ss - 1):
                dy = (y + (i + 0.5) / ss - cy) / radius
                for j in (0, ss - 1):
                    dx = (x + (j + 0.5) / ss - cx) / radius
                    corners += _inside(label, c * dx + s * dy, -s * dx + c * dy)
            if corners == 0 or corners == 4:
                cov[y, x] = corners / 4
                continue
            hits = 0
            for i in range(ss):
                dy = (y + (i + 0.5) / ss - cy) / radius
                for j in range(ss):
                    dx = (x + (j + 0.5) / ss - cx) / radius
                    hits += _inside(label, c * dx + s * dy, -s * dx + c * dy)
            cov[y, x] = hits / (ss * ss)
    return cov


# -------------------------------------------------------------------------- background
@njit(cache=True)
def _gradient_texture(size, c1, c2, theta, coarse):
    """Two-colour linear gradient plus a bilinearly upsampled coarse noise grid.

    out[y, x] = c1 + (c2 - c1) * t(y, x) + bilinear(coarse)(y, x), where t runs from 0 to 1
    along direction ``theta`` across the image and ``coarse`` (g, g, 3) is stretched over it.

    Returns (size, size, 3) float64.
    """
    out = np.empty((size, size, 3))
    g = coarse.shape[0]
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    t_lo = min(0.0, cos_t) + min(0.0, sin_t)           # range of x cos + y sin on [0, 1]^2
    t_span = abs(cos_t) + abs(sin_t)
    step = (g - 1) / max(size - 1, 1)                  # image pixel -> coarse grid position
    for y in range(size):
        fy = y * step
        iy = min(int(fy), g - 2)
        wy = fy - iy
        for x in range(size):
            fx = x * step
            ix = min(int(fx), g - 2)
            wx = fx - ix
            t = ((x * cos_t + y * sin_t) / max(size - 1, 1) - t_lo) / t_span
            for ch in range(3):
                tex = ((1 - wy) * ((1 - wx) * coarse[iy, ix, ch] + wx * coarse[iy, ix + 1, ch])
                       + wy * ((1 - wx) * coarse[iy + 1, ix, ch] + wx * coarse[iy + 1, ix + 1, ch]))
                out[y, x, ch] = c1[ch] + (c2[ch] - c1[ch]) * t + tex
    return out


@njit(cache=True)
def _paint_stroke(img, arc, a, b, c, d, e, half, colour):
    """Blend one thin anti-aliased stroke into ``img`` (S, S, 3) float64, in place.

    A pixel centre at distance ``dist`` from the stroke's centre line gets coverage
    ``clip(half + 0.5 - dist, 0, 1)``. Segment (arc == 0): from (a, b) to (c, d). Arc
    (arc == 1): centre (a, b), radius c, from angle d over ``e`` radians (clockwise in the
    image, y down).
    """
    S = img.shape[0]
    if arc == 0:                                       # visit only the stroke's bounding box
        x_lo, x_hi, y_lo, y_hi = min(a, c), max(a, c), min(b, d), max(b, d)
    else:
        x_lo, x_hi, y_lo, y_hi = a - c, a + c, b - c, b + c
    x_lo, x_hi = max(0, int(x_lo - half) - 1), min(S, int(x_hi + half) + 2)
    y_lo, y_hi = max(0, int(y_lo - half) - 1), min(S, int(y_hi + half) + 2)
    for y in range(y_lo, y_hi):
        py = y + 0.5
        for x in range(x_lo, x_hi):
            px = x + 0.5
            if arc == 0:
                dx, dy = c - a, d - b
                t = ((px - a) * dx + (py - b) * dy) / max(dx * dx + dy * dy, 1e-9)
                t = min(1.0, max(0.0, t))
                dist = math.hypot(px - a - t * dx, py - b - t * dy)
            else:
                if abs(math.hypot(px - a, py - b) - c) > half + 0.5:
                    continue
                ang = (math.atan2(py - b, px - a) - d) % (2.0 * math.pi)
                dist = abs(math.hypot(px - a, py - b) - c) if ang <= e else 1e9
            cov = min(1.0, max(0.0, half + 0.5 - dist))
            if cov > 0.0:
                for ch in range(3):
                    img[y, x, ch] = (1.0 - cov) * img[y, x, ch] + cov * colour[ch]


def _background(rng, size):
    """(S, S, 3) float64 cluttered background, about 0..255.

    Clutter: a gradient between two random colours plus blotchy texture (a 3x3 to 8x8 grid
    of colour noise stretched over the image), then 2-6 distractor strokes 0.8-1.6 px wide:
    line segments (which may leave the image) and arcs spanning less than half a turn (never
    a ring). Pixel noise is added later, over the object too.
    """
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, 2 * np.pi)
    coarse = rng.normal(0.0, rng.uniform(8, 30), (int(rng.integers(3, 9)),) * 2 + (3,))
    bg = _gradient_texture(size, c1, c2, theta, coarse)
    for _ in range(int(rng.integers(2, 7))):
        half = rng.uniform(0.4, 0.8)
        if rng.random() < 0.6:
            a, b, c, d = rng.uniform(-0.1, 1.1, 4) * size
            arc, e = 0, 0.0
        else:
            a, b = rng.uniform(0, size, 2)
            c = rng.uniform(0.15, 0.6) * size
            d, e = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.9) * np.pi
            arc = 1
        _paint_stroke(bg, arc, a, b, c, d, e, half, rng.uniform(0, 255, 3))
    return bg                                          # may leave 0..255: _compose clips


def _object_colour(rng, local_mean):
    """A random colour at least MIN_CONTRAST away from ``local_mean``; after a few misses,
    a dark or light colour on the far side of the mean in every channel."""
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - local_mean) >= MIN_CONTRAST:
            return colour
    return np.where(local_mean > 127.5, rng.uniform(0, 60, 3), rng.uniform(195, 255, 3))


# ---------------------------------------------------------------------------- samples
@njit(cache=True)
def _compose(bg, cov, colour, noise):
    """uint8 image ``clip(rint((1 - cov) * bg + cov * colour + noise), 0, 255)``.

    bg (S, S, 3) float64, cov (S, S), colour (3,), noise (S, S, 3) -> (S, S, 3) uint8.
    """
    S = bg.shape[0]
    out = np.empty((S, S, 3), np.uint8)
    for y in range(S):
        for x in range(S):
            a = cov[y, x]
            for ch in range(3):
                v = (1.0 - a) * bg[y, x, ch] + a * colour[ch] + noise[y, x, ch]
                out[y, x, ch] = np.uint8(min(255.0, max(0.0, round(v))))
    return out


def mask_box(mask):
    """Tight box (x0, y0, x1, y1) of a non-empty boolean mask, x1 and y1 exclusive."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.int64)


def make_sample(rng, size=64, label=None, clutter=True):
    """Draw one image.

    Parameters
    ----------
    rng : numpy.random.Generator (or an int seed)
    size : int, image side in pixels (>= 16)
    label : int in [0, 10) or None (random)
    clutter : bool, False draws the bare silhouette instead: a white object on black, no
        strokes, no noise (each pixel's grey level is then 255 x its coverage, rounded)

    Returns
    -------
    image : ndarray, (size, size, 3) uint8
    label : int
    mask : ndarray, (size, size) bool, pixels at least half covered by the object
    box : ndarray, (4,) int64, (x0, y0, x1, y1) of ``mask``, x1 and y1 exclusive
    """
    rng = np.random.default_rng(rng)                   # a Generator is passed through as is
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    if label is None:
        label = int(rng.integers(len(CLASSES)))
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")

    # Geometry: the bounding circle (radius R) lies at least one pixel inside the image.
    radius = rng.uniform(0.3, 0.6) * size / 2
    cx, cy = rng.uniform(radius + 1, size - 1 - radius, 2)
    angle = rng.uniform(0, 2 * np.pi)
    cov = _coverage(label, cx, cy, radius, angle, size, SUPERSAMPLE)

    if clutter:
        bg = _background(rng, size)
        y0, y1 = int(cy - radius), int(cy + radius) + 1
        x0, x1 = int(cx - radius), int(cx + radius) + 1
        colour = _object_colour(rng, bg[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0))
        noise = rng.standard_normal((size, size, 3), dtype=np.float32) * rng.uniform(2, 10)
    else:                                              # white silhouette on black
        bg = np.zeros((size, size, 3))
        colour = np.full(3, 255.0)
        noise = np.zeros((size, size, 3), np.float32)
    image = _compose(bg, cov, colour, noise)

    mask = cov >= 0.5
    return image, label, mask, mask_box(mask)


def make_dataset(n, seed, size=64, clutter=True):
    """``n`` images with balanced labels (each class n // 10 or n // 10 + 1 times, shuffled).

    Parameters
    ----------
    n : int
    seed : int or numpy.random.Generator
    size : int
    clutter : bool

    Returns
    -------
    images : ndarray, (n, size, size, 3) uint8
    labels : ndarray, (n,) int64
    masks : ndarray, (n, size, size) bool
    boxes : ndarray, (n, 4) int64, (x0, y0, x1, y1), exclusive ends
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), bool)
    boxes = np.empty((n, 4), np.int64)
    for i in range(n):
        images[i], _, masks[i], boxes[i] = make_sample(rng, size, int(labels[i]), clutter)
    return images, labels, masks, boxes
