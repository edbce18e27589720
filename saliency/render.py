"""Turning maps into pictures: a colour map, overlays, boxes, outlines, grids, PNG files.

Everything here takes and returns ``uint8`` RGB images ``(H, W, 3)`` (grey ``(H, W)`` images are
accepted where an image is read). Maps are mapped to colours through **viridis**, a perceptual
colour map whose lightness increases monotonically, so brighter always means larger; the
256-entry table is embedded below (matplotlib's ``_viridis_data``, CC0, rounded to 8 bits), so
no plotting library is needed.

A picture of a map is only honest if its caption says how the values were scaled. The
scaling functions therefore also return a short text ("min-max 0 .. 0.031", "min .. 99th
percentile, clipped", ...) to put in the caption.
"""

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.files import atomic_path

_VIRIDIS_HEX = (
    "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467"
    "48166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677"
    "482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882"
    "443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f4889"
    "3e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c"
    "38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e"
    "31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e"
    "2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e"
    "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d"
    "218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a"
    "1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a884"
    "23a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b"
    "32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e"
    "4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e"
    "67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d549"
    "89d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32"
    "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11c"
    "d2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61e"
    "f6e620f8e621fbe723fde725"
)
VIRIDIS = np.frombuffer(bytes.fromhex(_VIRIDIS_HEX), np.uint8).reshape(256, 3)  # (256, 3) RGB


# ------------------------------------------------------------------------------- checks
def as_rgb(image):
    """An image as uint8 (H, W, 3): grey is repeated, bool becomes 0/255, RGBA loses alpha.

    Float images are refused (scale them with ``heatmap`` or ``signed_map`` first).
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (or bool), got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def _check_map(smap, ndim=2):
    smap = np.asarray(smap, dtype=np.float64)
    if smap.ndim != ndim:
        raise ValueError(f"map must be {ndim}-D, got shape {smap.shape}")
    if not np.all(np.isfinite(smap)):
        raise ValueError("map contains NaN or Inf")
    return smap


# ------------------------------------------------------------------------ scalar maps
def normalise(smap, clip_percentile=None):
    """Scale a map to [0, 1] and say how.

    Parameters
    ----------
    smap : array_like, (H, W) finite
    clip_percentile : float in (0, 100] or None
        None: min-max. Otherwise the map's minimum goes to 0 and its ``clip_percentile``-th
        percentile to 1; larger values are clipped to 1 (a few extreme pixels otherwise
        leave the rest of a saliency map black).

    Returns
    -------
    unit : ndarray, (H, W) float64 in [0, 1]
    text : str, the normalisation in words, for a caption
    """
    smap = _check_map(smap)
    lo = float(smap.min())
    if clip_percentile is None:
        hi = float(smap.max())
        text = f"min-max {lo:.3g} .. {hi:.3g}"
    else:
        if not 0 < clip_percentile <= 100:
            raise ValueError(f"clip_percentile must be in (0, 100], got {clip_percentile}")
        hi = float(np.percentile(smap, clip_percentile))
        text = f"min .. {clip_percentile:g}th percentile ({lo:.3g} .. {hi:.3g}), clipped"
    if hi <= lo:
        return np.zeros(smap.shape), f"constant map ({lo:.3g})"
    return np.clip((smap - lo) / (hi - lo), 0.0, 1.0), text


def colourise(unit):
    """Values in [0, 1] -> viridis colours: (H, W) -> (H, W, 3) uint8."""
    index = np.rint(np.clip(unit, 0.0, 1.0) * 255).astype(np.intp)
    return VIRIDIS[index]


def heatmap(smap, clip_percentile=None, return_text=False):
    """A map as a viridis image.

    Parameters
    ----------
    smap : array_like, (H, W) finite
    clip_percentile : float or None, see ``normalise``
    return_text : bool, also return the normalisation in words

    Returns
    -------
    image : ndarray, (H, W, 3) uint8
    text : str, only if ``return_text``
    """
    unit, text = normalise(smap, clip_percentile)
    image = colourise(unit)
    return (image, text) if return_text else image


def overlay(rgb, smap, alpha=0.5, clip_percentile=None):
    """Blend the heat map of ``smap`` over ``rgb``: ``(1 - alpha) * rgb + alpha * heat``.

    Parameters
    ----------
    rgb : array_like, (H, W, 3) uint8
    smap : array_like, (H, W), same H and W
    alpha : float in [0, 1]

    Returns
    -------
    ndarray, (H, W, 3) uint8
    """
    rgb = as_rgb(rgb)
    smap = _check_map(smap)
    if smap.shape != rgb.shape[:2]:
        raise ValueError(f"map shape {smap.shape} does not match image shape {rgb.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    heat = heatmap(smap, clip_percentile).astype(np.float64)
    return np.rint((1.0 - alpha) * rgb + alpha * heat).astype(np.uint8)


def signed_map(g, return_text=False):
    """A signed array, e.g. a raw input gradient, as an image centred on mid-grey.

    ``0.5 + 0.5 * g / max|g|``: zero is grey (128), the largest magnitude reaches 0 or 255,
    and each colour channel shows the sign of the gradient of that channel.

    Parameters
    ----------
    g : array_like, (3, H, W) (the engine's layout), (H, W, 3), or (H, W)
    return_text : bool

    Returns
    -------
    image : ndarray, (H, W, 3) uint8
    text : str, only if ``return_text``
    """
    g = np.asarray(g, dtype=np.float64)
    if g.ndim == 3 and g.shape[0] == 3 and g.shape[2] != 3:
        g = g.transpose(1, 2, 0)                     # (3, H, W) -> (H, W, 3)
    elif g.ndim == 2:
        g = np.repeat(g[:, :, None], 3, axis=2)
    g = _check_map(g, ndim=3)
    if g.shape[2] != 3:
        raise ValueError(f"signed_map needs (3, H, W), (H, W, 3) or (H, W), got {g.shape}")
    scale = float(np.abs(g).max())
    unit = 0.5 + 0.5 * g / scale if scale > 0 else np.full(g.shape, 0.5)
    image = np.rint(unit * 255).astype(np.uint8)
    text = f"signed, grey = 0, scaled by max |g| = {scale:.3g}"
    return (image, text) if return_text else image


# --------------------------------------------------------------------- marks on images
def draw_box(rgb, box, colour=(255, 0, 0), width=2):
    """A copy of ``rgb`` with the outline of ``box`` drawn inside the box's pixels.

    Parameters
    ----------
    rgb : array_like, (H, W, 3) uint8
    box : (x0, y0, x1, y1), x1 and y1 exclusive; clipped to the image
    colour : 3 ints
    width : int >= 1, line width in pixels

    Returns
    -------
    ndarray, (H, W, 3) uint8
    """
    out = as_rgb(rgb).copy()
    H, W, _ = out.shape
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, x1 = max(0, x0), min(W, x1)
    y0, y1 = max(0, y0), min(H, y1)
    if x1 <= x0 or y1 <= y0:
        return out
    w = max(1, int(width))
    c = np.asarray(colour, dtype=np.uint8)
    out[y0:min(y0 + w, y1), x0:x1] = c
    out[max(y1 - w, y0):y1, x0:x1] = c
    out[y0:y1, x0:min(x0 + w, x1)] = c
    out[y0:y1, max(x1 - w, x0):x1] = c
    return out


def mask_outline(rgb, mask, colour=(255, 255, 0)):
    """A copy of ``rgb`` with the boundary pixels of ``mask`` painted ``colour``.

    A boundary pixel is a mask pixel with a 4-neighbour outside the mask or the image.
    """
    out = as_rgb(rgb).copy()
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != out.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {out.shape[:2]}")
    padded = np.pad(mask, 1, constant_values=False)                 # (H + 2, W + 2)
    interior = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    out[mask & ~interior] = np.asarray(colour, dtype=np.uint8)
    return out


# --------------------------------------------------------------------------------- grids
def _font():
    return ImageFont.load_default()


def _text_size(font, text):
    x0, y0, x1, y1 = font.getbbox(text)
    return x1 - x0, y1 - y0


def _wrap(font, text, width):
    """Greedy word wrap of ``text`` into lines no wider than ``width`` pixels."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and _text_size(font, trial)[0] > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def upscale(image, min_size=128):
    """Nearest-neighbour upscaling by the largest integer factor that keeps the longer side
    at most ``max(min_size, current)``; a 64x64 map becomes 128x128, pixels stay square."""
    image = as_rgb(image)
    factor = max(1, int(min_size) // max(image.shape[:2]))
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def grid(images, titles=None, ncols=None, caption=None, min_size=128, pad=6):
    """Lay images out in a titled grid, with an optional caption underneath.

    Parameters
    ----------
    images : sequence of (H_i, W_i, 3) or (H_i, W_i) uint8 / bool arrays (sizes may differ)
    titles : sequence of str or None, one per image, drawn above it
    ncols : int or None, default ``min(len(images), 4)``
    caption : str or None, wrapped to the grid's width
    min_size : int, small images are enlarged (nearest neighbour) towards this size
    pad : int, pixels between cells

    Returns
    -------
    ndarray, (H, W, 3) uint8, white background, black text
    """
    if len(images) == 0:
        raise ValueError("grid needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    cells = [upscale(im, min_size) for im in images]
    n = len(cells)
    ncols = min(n, 4) if ncols is None else max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    font = _font()
    line_h = _text_size(font, "Ag")[1] + 4
    cell_w = max(c.shape[1] for c in cells)
    cell_h = max(c.shape[0] for c in cells)
    title_h = line_h if titles is not None else 0
    width = ncols * cell_w + (ncols + 1) * pad
    cap_lines = _wrap(font, caption, width - 2 * pad) if caption else []
    height = nrows * (title_h + cell_h) + (nrows + 1) * pad + len(cap_lines) * line_h

    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, cell in enumerate(cells):
        r, c = divmod(i, ncols)
        x = pad + c * (cell_w + pad)
        y = pad + r * (title_h + cell_h + pad)
        if titles is not None:
            draw.text((x, y), str(titles[i]), fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(cell), (x, y + title_h))
    y = pad + nrows * (title_h + cell_h + pad)
    for line in cap_lines:
        draw.text((pad, y), line, fill=(0, 0, 0), font=font)
        y += line_h
    return np.asarray(canvas)


# ---------------------------------------------------------------------------------- files
def save_png(path, image):
    """Write ``image`` as a PNG without ever leaving a half-written file at ``path``.

    The image is written to a temporary file in the same directory, flushed to disk, and
    renamed over ``path`` with ``os.replace`` (atomic on one file system). On any error the
    temporary file is removed and ``path`` is untouched. Missing directories are created.

    Parameters
    ----------
    path : str or os.PathLike
    image : array_like, (H, W), (H, W, 3) or (H, W, 4) uint8, or bool
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (
            image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"save_png needs a uint8 (H, W), (H, W, 3) or (H, W, 4) image, got "
                         f"{image.dtype} {image.shape}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        Image.fromarray(np.ascontiguousarray(image)).save(f, format="PNG")
        f.flush()
        os.fsync(f.fileno())
