"""Turning maps into pictures: a colour map, overlays, marks, figures of titled panels, PNG files.

Arrays in, arrays out: images are ``uint8`` RGB ``(H, W, 3)`` (grey ``(H, W)`` images are accepted
where an image is read). Maps are coloured through matplotlib's **viridis**, a perceptual colour
map whose lightness increases monotonically, so brighter always means larger.

Figures (grids of titled panels, boxes and outlines drawn over images, legends, colour bars,
captions) are matplotlib figures on its Agg canvas, no display needed, rendered to an array and
written with :func:`save_png`, which never leaves a half-written file.

A picture of a map is only honest if its caption says how the values were scaled. The scaling
functions therefore also return a short text ("min-max 0 .. 0.031", "min .. 99th percentile,
clipped", ...) to put in the caption, and :func:`scaling_caption` says it in words for a page.
"""

import io
import math
import os
import textwrap
from dataclasses import dataclass, field

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from models.files import atomic_path

from .localise import box_iou

CMAP = "viridis"
#: the colour map as a (256, 3) uint8 table (matplotlib's viridis rounded to 8 bits).
VIRIDIS = np.rint(colormaps[CMAP](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
DPI = 100
FONT_SIZE = 9
#: the paper's criterion: a box is right when its IoU with the ground-truth box is at least this.
IOU_PASS = 0.5


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


# ------------------------------------------------------------------- localisation verdicts
def localisation_verdict(box, truth, threshold=IOU_PASS):
    """(iou, passed, text) for a found box against the truth box, both (x0, y0, x1, y1) exclusive.

    ``text`` is a panel title: "IoU 0.62 ≥ 0.5: pass" or "IoU 0.41 < 0.5: fail" (the IoU is
    rounded down to two places, so a printed 0.50 never fails).
    """
    iou = box_iou(box, truth)
    passed = iou >= threshold
    shown = math.floor(iou * 100) / 100
    return iou, passed, f"IoU {shown:.2f} {'≥' if passed else '<'} {threshold:g}: {'pass' if passed else 'fail'}"


def localisation_panel(rgb, mask, box, truth=None, title="GraphCut"):
    """A Panel of ``rgb`` with the outline of ``mask``, its ``box`` and, if given, the ``truth`` box;
    with a truth box the title is the verdict (green pass, red fail). Returns (panel, iou or None)."""
    boxes = [(box, "found")]
    if truth is None:
        return Panel(rgb, title, boxes, mask), None
    iou, passed, text = localisation_verdict(box, truth)
    return Panel(rgb, f"{title}\n{text}" if title else text, boxes + [(truth, "truth")], mask,
                 "green" if passed else "red"), iou


# -------------------------------------------------------------------------------- figures
#: how boxes and outlines are drawn, and what the legend calls them. Each line has a dark edge
#: under it (``halo``) so that it shows on any background, light or dark.
STYLES = {
    "outline": dict(color="yellow", linewidth=1.2, linestyle="-", halo="black",
                    label="outline of the largest GraphCut component"),
    "found": dict(color="red", linewidth=1.6, linestyle="-", halo="white",
                  label="its bounding box (the localisation)"),
    "truth": dict(color="white", linewidth=1.6, linestyle=(0, (3, 2)), halo="black",
                  label="ground-truth box (white dashes on black)"),
}


def _line_style(kind):
    st = STYLES[kind]
    return dict(color=st["color"], linewidth=st["linewidth"], linestyle=st["linestyle"],
                path_effects=[patheffects.Stroke(linewidth=st["linewidth"] + 1.6, foreground=st["halo"]),
                              patheffects.Normal()])


@dataclass
class Panel:
    """One picture of a figure.

    image : (H, W, 3) / (H, W) uint8 or bool      the pixels, shown 1:1 in shape, enlarged
    title : str                                   above the picture
    boxes : list of (box, kind)                   box (x0, y0, x1, y1), x1/y1 exclusive; kind a STYLES key
    outline : (H, W) bool or None                 a region whose outline is drawn ("outline" style)
    title_colour : str                            e.g. to show a verdict
    """
    image: np.ndarray
    title: str = ""
    boxes: list = field(default_factory=list)
    outline: np.ndarray = None
    title_colour: str = "black"


def upscale(image, min_size=128):
    """Nearest-neighbour upscaling by the largest integer factor that keeps the longer side
    at most ``max(min_size, current)``; a 64x64 map becomes 128x128, pixels stay square."""
    image = as_rgb(image)
    factor = max(1, int(min_size) // max(image.shape[:2]))
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def _wrap(text, inches, size=FONT_SIZE):
    """Wrap ``text`` to about ``inches`` at ``size`` points (an average glyph is ~0.55 em wide)."""
    chars = max(10, int(inches * 72 / (0.55 * size)))
    return "\n".join(textwrap.fill(p, chars) if p else "" for p in text.split("\n"))


def draw_panels(fig, panels, ncols, cell):
    """Draw ``panels`` into ``fig`` (a Figure or SubFigure) on an ncols-wide grid; returns the axes."""
    nrows = math.ceil(len(panels) / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, p in zip(axes.ravel(), panels):
        image = as_rgb(p.image)
        ax.imshow(image, interpolation="nearest")
        if p.title:
            ax.set_title(_wrap(p.title, cell), fontsize=FONT_SIZE, color=p.title_colour, pad=3)
        if p.outline is not None:
            mask = np.asarray(p.outline, dtype=bool)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"outline shape {mask.shape} does not match image shape {image.shape[:2]}")
            if mask.any() and not mask.all():
                st = _line_style("outline")
                ax.contour(mask.astype(np.float32), levels=[0.5], colors=[st["color"]],
                           linewidths=st["linewidth"]).set_path_effects(st["path_effects"])
        for box, kind in p.boxes:
            x0, y0, x1, y1 = (float(v) for v in box)
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, **_line_style(kind)))
    return axes


def legend_handles(kinds):
    """Legend entries (matplotlib Line2D) for the STYLES named in ``kinds``."""
    return [Line2D([], [], label=STYLES[k]["label"], **_line_style(k)) for k in kinds]


def new_figure(width, height):
    """An empty Figure (width x height inches) on the Agg canvas, laid out by constrained layout."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def finish(fig, caption=None, legend=(), colourbar=None, width=None, bar_under=None):
    """Add a legend (STYLES keys), a viridis colour bar (its label) and a wrapped caption below.

    ``bar_under``: the (sub)figure whose panels the colour bar goes under (default: ``fig``).
    """
    width = width or fig.get_figwidth()
    if colourbar:
        under = bar_under or fig
        bar = under.colorbar(ScalarMappable(Normalize(0, 1), CMAP), ax=under.axes, location="bottom",
                           fraction=0.03, aspect=50, pad=0.01, ticks=[0, 0.5, 1])
        bar.set_label(colourbar, fontsize=FONT_SIZE)
        bar.ax.tick_params(labelsize=FONT_SIZE - 1)
    if legend:
        fig.legend(handles=legend_handles(legend), loc="outside upper center",
                   ncols=1 if width < 3.5 * len(legend) else len(legend),
                   fontsize=FONT_SIZE, frameon=False, handlelength=3)
    if caption:
        fig.supxlabel(_wrap(caption, width - 0.3), fontsize=FONT_SIZE, ha="left", x=0.02,
                      multialignment="left")
    return fig


def to_array(fig):
    """Render a Figure to (H, W, 3) uint8 (white margins trimmed to a small border)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.08)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def grid(images, titles=None, ncols=None, caption=None, min_size=128, legend=(), colourbar=None):
    """Lay images (or :class:`Panel` s) out in a titled grid, with an optional caption underneath.

    Parameters
    ----------
    images : sequence of (H_i, W_i, 3) or (H_i, W_i) uint8 / bool arrays, or Panels
    titles : sequence of str or None, one per image, drawn above it (overrides a Panel's)
    ncols : int or None, default ``min(len(images), 4)``
    caption : str or None, wrapped to the grid's width
    min_size : int, each picture is shown at least this many pixels on its longer side
    legend : STYLES keys to explain; colourbar : a label for a viridis colour bar (None: none)

    Returns
    -------
    ndarray, (H, W, 3) uint8, white background
    """
    if len(images) == 0:
        raise ValueError("grid needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    panels = [p if isinstance(p, Panel) else Panel(p) for p in images]
    if titles is not None:
        panels = [Panel(p.image, str(t), p.boxes, p.outline, p.title_colour) for p, t in zip(panels, titles)]
    n = len(panels)
    ncols = min(n, 4) if ncols is None else max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    side = max(max(as_rgb(p.image).shape[:2]) for p in panels)
    cell = max(min_size, side) / DPI
    title_lines = max((_wrap(p.title, cell).count("\n") + 1 if p.title else 0) for p in panels)
    width = ncols * (cell + 0.08) + 0.1
    extra = (0.2 * (len(legend) if width < 3.5 * len(legend) else 1) + 0.1 if legend else 0) + (0.5 if colourbar else 0)
    if caption:
        extra += 0.17 * (_wrap(caption, width - 0.3).count("\n") + 1) + 0.1
    fig = new_figure(width, nrows * (cell + 0.18 * title_lines + 0.06) + extra + 0.1)
    draw_panels(fig, panels, ncols, cell)
    return to_array(finish(fig, caption, legend, colourbar, width))


def scaling_caption(clip_percentile=None):
    """What :func:`heatmap` did to each map, in words, for a caption."""
    if clip_percentile is None or clip_percentile == 100:
        return "each map scaled on its own: its minimum shown darkest, its maximum brightest (min-max)"
    return (f"each map scaled on its own: (map - its minimum) / (its {clip_percentile:g}th percentile - "
            f"its minimum), clipped to [0, 1], so the top {100 - clip_percentile:g}% of its pixels show "
            "the brightest colour")


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
