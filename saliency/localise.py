"""Weakly supervised object localisation from a saliency map (paper Sec. 3.2).

A saliency map says where the class evidence is, but it is blotchy: it lights up the most
discriminative parts of an object, not the whole object. The paper turns it into a box by
letting colour fill in the rest:

1. **Labels.** Two sets, as in the authors' code (``ksseg.m`` of Mahendran & Vedaldi's port,
   "karen's code"): *soft* labels, pixels at or above the 95% quantile of the map (foreground) and
   at or below its 30% quantile (background), on which the colour models are fit; and *hard*
   labels, at or above the 99.5% quantile and at or below the 0.5% quantile, the only pixels the
   cut holds to a side. Every other pixel, soft-labelled ones included, goes where its colour and
   its neighbours put it.
2. **Colour models.** A Gaussian mixture (5 full-covariance components) on the RGB colours of
   each soft label set (``gmm.py``).
3. **GraphCut** (Boykov & Jolly 2001). Minimise over labellings L of all pixels

       E(L) = sum_p D_p(L_p) + sum_{p~q, L_p != L_q} V_pq,
       D_p(fg) = -log p(I_p | fg GMM),      D_p(bg) = -log p(I_p | bg GMM),
       V_pq = gamma * exp(-beta ||I_p - I_q||^2) / dist(p, q),      gamma = 150,
       beta = 1 / (2 * mean over neighbour pairs of ||I_p - I_q||^2),

   over the 8-connected grid; hard-labelled pixels are held to their side by a capacity larger
   than any cut through their other edges. Cutting along strong colour edges is cheap, so the
   segment follows the object's outline. The minimum is an s-t min cut (PyMaxflow).
4. **Largest connected component** of the foreground (8-connected), and **its bounding box**.

Boxes are ``(x0, y0, x1, y1)`` in pixels with ``x1`` and ``y1`` exclusive, so
``mask[y0:y1, x0:x1]`` is the box's content and its area is ``(x1 - x0) * (y1 - y0)``.
"""

import maxflow
import numpy as np
from scipy import ndimage

from .gmm import GMM

# The four "forward" neighbour offsets (dy, dx) of the 8-connected grid; each undirected pair
# of neighbours appears exactly once: right, down, down-right, down-left.
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


# --------------------------------------------------------------------------- input checks
def _check_smap(smap, shape=None):
    smap = np.asarray(smap)
    if smap.ndim != 2:
        raise ValueError(f"saliency map must be 2-D (H, W), got shape {smap.shape}")
    if shape is not None and smap.shape != shape:
        raise ValueError(f"saliency map shape {smap.shape} does not match image shape {shape}")
    if not np.issubdtype(smap.dtype, np.number) or np.iscomplexobj(smap):
        raise ValueError(f"saliency map must be real-valued, got dtype {smap.dtype}")
    smap = smap.astype(np.float64)
    if not np.all(np.isfinite(smap)):
        raise ValueError("saliency map contains NaN or Inf")
    return smap


def _check_rgb(rgb):
    """Colours as float64 in [0, 1], shape (H, W, 3). uint8 is divided by 255; floats must
    already be in [0, 1]; a grey (H, W) image is repeated over three channels."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB (or (H, W) grey), got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"image must be uint8 (0..255) or float (0..1), got dtype {rgb.dtype}")
    rgb = rgb.astype(np.float64)
    if not np.all(np.isfinite(rgb)):
        raise ValueError("image contains NaN or Inf")
    if rgb.min() < -1e-6 or rgb.max() > 1 + 1e-6:
        raise ValueError(f"float image must be in [0, 1], got range [{rgb.min():.3g}, "
                         f"{rgb.max():.3g}]; pass uint8 for 0..255 data")
    return rgb


# ---------------------------------------------------------------------- connected components
def label_components(mask):
    """8-connected components of a boolean mask (``scipy.ndimage.label`` with a 3x3 structure).

    Parameters
    ----------
    mask : array_like, (H, W) bool

    Returns
    -------
    labels : ndarray, (H, W) int32, 0 for background, 1..n numbered in raster order
    n : int
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool), output=np.int32)
    return labels, int(n)


def largest_component(mask):
    """The largest 8-connected component of ``mask`` (ties: the first in raster order).

    Returns an all-False mask of the same shape when ``mask`` is empty.
    """
    labels, n = label_components(mask)
    if n == 0:
        return np.zeros(labels.shape, bool)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)  # (n + 1,), sizes[0] is background
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def bounding_box(mask):
    """Tight box ``(x0, y0, x1, y1)`` of a non-empty mask, ``x1`` and ``y1`` exclusive."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        raise ValueError("bounding_box of an empty mask")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# -------------------------------------------------------------------------------- GraphCut
def pairwise_weights(img, gamma):
    """Boykov-Jolly contrast-sensitive weights for the four forward neighbour offsets.

    Parameters
    ----------
    img : ndarray, (H, W, C) float64
    gamma : float

    Returns
    -------
    weights : list of four (H, W) arrays; ``weights[i][y, x]`` is V between (y, x) and
        (y + dy, x + dx) for ``(dy, dx) = _OFFSETS[i]`` (0 where that neighbour is outside)
    beta : float, 1 / (2 <||I_p - I_q||^2>) over all 8-connected pairs (0 for a flat image)
    """
    H, W, _ = img.shape
    d2s, valids = [], []
    for dy, dx in _OFFSETS:
        d2 = np.zeros((H, W))
        valid = np.zeros((H, W), bool)
        ys = slice(0, H - dy)                                     # rows that have this neighbour
        xs, xn = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
        diff = img[ys, xs] - img[dy:H, xn]                        # (H - dy, W - |dx|, C)
        d2[ys, xs] = np.sum(diff * diff, axis=2)
        valid[ys, xs] = True
        d2s.append(d2)
        valids.append(valid)
    mean_d2 = sum(d[v].sum() for d, v in zip(d2s, valids)) / max(sum(v.sum() for v in valids), 1)
    beta = 1.0 / (2.0 * mean_d2) if mean_d2 > 0 else 0.0
    weights = []
    for (dy, dx), d2, valid in zip(_OFFSETS, d2s, valids):
        dist = np.hypot(dy, dx)
        weights.append(np.where(valid, gamma * np.exp(-beta * d2) / dist, 0.0))
    return weights, beta


def graphcut(img, unary_fg, unary_bg, fg_seeds, bg_seeds, gamma):
    """Minimise the Boykov-Jolly energy by an s-t min cut.

    Source = foreground, sink = background. A pixel ending on the sink side cuts its source
    edge, so the source capacity is the cost of calling it background, ``D_p(bg)``, and the
    sink capacity is ``D_p(fg)``; both are shifted by ``min(D_p(fg), D_p(bg))`` so they are
    non-negative (only their difference matters). Seeds get capacity K on their own side and 0
    on the other, with K larger than the unary range plus every pairwise edge at one pixel,
    so no minimum cut can separate a seed from its terminal.

    Parameters
    ----------
    img : ndarray, (H, W, 3) float64
    unary_fg, unary_bg : ndarray, (H, W) float64, -log densities
    fg_seeds, bg_seeds : ndarray, (H, W) bool, disjoint: the pixels held to each side
    gamma : float

    Returns
    -------
    mask : ndarray, (H, W) bool, True on the foreground side of the cut
    beta : float
    """
    weights, beta = pairwise_weights(img, gamma)
    m = np.minimum(unary_fg, unary_bg)
    cap_source = unary_bg - m                                     # (H, W), cost of label bg
    cap_sink = unary_fg - m                                       # (H, W), cost of label fg
    K = 1.0 + max(cap_source.max(), cap_sink.max()) + gamma * (4.0 + 4.0 / np.sqrt(2.0))
    cap_source = np.where(fg_seeds, K, np.where(bg_seeds, 0.0, cap_source))
    cap_sink = np.where(bg_seeds, K, np.where(fg_seeds, 0.0, cap_sink))

    g = maxflow.Graph[float]()
    nodes = g.add_grid_nodes(unary_fg.shape)                      # (H, W) node ids
    for (dy, dx), w in zip(_OFFSETS, weights):
        structure = np.zeros((3, 3))
        structure[1 + dy, 1 + dx] = 1.0                           # edge (y, x) -> (y+dy, x+dx)
        g.add_grid_edges(nodes, weights=w, structure=structure, symmetric=True)
    g.add_grid_tedges(nodes, cap_source, cap_sink)
    g.maxflow()
    return ~g.get_grid_segments(nodes), beta                     # segments: True = sink = bg


# ------------------------------------------------------------------------------ localise
def quantile_labels(smap, fg_quantile, bg_quantile):
    """Foreground ``smap >= quantile(smap, fg_quantile)`` and background ``smap <= quantile(smap,
    bg_quantile)``, (H, W) bool each, disjoint (a tie counts as background), and the two thresholds.
    Ties are included, so a map that is mostly zero has more background than ``bg_quantile``."""
    t_fg, t_bg = np.quantile(smap, fg_quantile), np.quantile(smap, bg_quantile)
    bg = smap <= t_bg
    return (smap >= t_fg) & ~bg, bg, (float(t_fg), float(t_bg))


#: the authors' settings (``deconvnet_analysis/saliency/ksseg.m``): the (foreground, background) quantiles
#: of the map whose pixels the colour models are fit on (``quantMax``, ``quantMin``), those the cut holds
#: to their side (``quantMaxClamp``, ``quantMinClamp``), and the pairwise weight (``Params.gcGamma``)
SOFT, HARD, GAMMA = (0.95, 0.30), (0.995, 0.005), 150.0


def check_quantiles(soft, hard):
    """ValueError unless the labels nest: 0 <= hard[1] <= soft[1] < soft[0] <= hard[0] <= 1."""
    (soft_fg, soft_bg), (hard_fg, hard_bg) = soft, hard
    if not 0.0 <= hard_bg <= soft_bg < soft_fg <= hard_fg <= 1.0:
        raise ValueError(f"soft and hard quantiles (FG, BG) must nest as 0 <= hard BG <= soft BG < soft FG <= "
                         f"hard FG <= 1, got soft {tuple(soft)}, hard {tuple(hard)}")


def localise(rgb, smap, soft=SOFT, hard=HARD, n_components=5, gamma=GAMMA,
             seed=0, return_details=False, reg_covar=1e-4):
    """Object mask and box from an image and its saliency map (paper Sec. 3.2), as the authors ran it.

    The defaults are those of the authors' code (``deconvnet_analysis/saliency/ksseg.m``):
    ``soft`` its ``quantMax = 0.95`` and ``quantMin = 0.3`` (the labels the GMMs are fit on),
    ``hard`` its ``quantMaxClamp = 0.995`` and ``quantMinClamp = 0.005`` (the clamped labels),
    ``n_components`` its ``gmmNmix_fg = gmmNmix_bg = 5``, ``gamma`` its ``Params.gcGamma = 150``.
    ``hard=soft`` with ``gamma=50`` is GrabCut's way instead: every soft-labelled pixel clamped.

    Parameters
    ----------
    rgb : array_like, (H, W, 3) uint8 (or float in [0, 1], or (H, W) grey)
    smap : array_like, (H, W) real, finite; larger = more salient
    soft : (fg, bg) quantiles of the map: the pixels the colour models are fit on
    hard : (fg, bg) quantiles of the map: the pixels the cut holds to their side;
        0 <= hard[1] <= soft[1] < soft[0] <= hard[0] <= 1
    n_components : int, Gaussian components per colour model
    gamma : float, weight of the pairwise (smoothness) term
    seed : int, for the GMM initialisation
    return_details : bool, also return a dict of intermediate results
    reg_covar : float, covariance floor of the GMMs in (colour / 255)^2 units (1e-4 is a
        standard deviation of about 2.5 grey levels)

    Returns
    -------
    mask : ndarray, (H, W) bool, the largest connected component of the segmentation
    box : tuple of int, (x0, y0, x1, y1), x1 and y1 exclusive
    details : dict, only if ``return_details``: ``soft_fg``, ``soft_bg``, ``hard_fg``, ``hard_bg``
        (H, W) bool, ``graphcut_mask`` (H, W) bool before the component step, ``fg_gmm``, ``bg_gmm``,
        ``unary_fg``, ``unary_bg`` (H, W), ``beta``, ``thresholds`` ({"soft": (fg, bg), "hard": (fg, bg)})
    """
    img = _check_rgb(rgb)
    smap = _check_smap(smap, img.shape[:2])
    check_quantiles(soft, hard)
    (soft_fg_q, soft_bg_q), (hard_fg_q, hard_bg_q) = soft, hard
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    H, W = smap.shape

    # 1. Labels: soft ones for the colour models, hard ones for the cut.
    soft_fg, soft_bg, soft_t = quantile_labels(smap, soft_fg_q, soft_bg_q)
    hard_fg, hard_bg, hard_t = quantile_labels(smap, hard_fg_q, hard_bg_q)
    if not hard_fg.any():
        raise ValueError("saliency map has no pixels above its background quantile "
                         "(is it constant?): nothing to localise")

    # 2. Colour models on the soft labels, and the unary terms for every pixel.
    rng = np.random.default_rng(seed)
    colours = img.reshape(-1, 3)                                  # (H*W, 3)
    fg_gmm = GMM(n_components, reg_covar=reg_covar, seed=rng).fit(colours[soft_fg.ravel()])
    bg_gmm = GMM(n_components, reg_covar=reg_covar, seed=rng).fit(colours[soft_bg.ravel()])
    unary_fg = -fg_gmm.log_prob(colours).reshape(H, W)
    unary_bg = -bg_gmm.log_prob(colours).reshape(H, W)

    # 3. GraphCut, the hard labels clamped: the cut always holds them, so it is never empty.
    cut, beta = graphcut(img, unary_fg, unary_bg, hard_fg, hard_bg, gamma)
    # 4. Largest component and its box.
    mask = largest_component(cut)
    box = bounding_box(mask)
    if not return_details:
        return mask, box
    details = dict(soft_fg=soft_fg, soft_bg=soft_bg, hard_fg=hard_fg, hard_bg=hard_bg, graphcut_mask=cut,
                   fg_gmm=fg_gmm, bg_gmm=bg_gmm, unary_fg=unary_fg, unary_bg=unary_bg, beta=beta,
                   thresholds={"soft": soft_t, "hard": hard_t})
    return mask, box, details


# ------------------------------------------------------------------ baseline and scoring
def threshold_box(smap, quantile=0.95):
    """Baseline without colour: the largest component of ``smap >= quantile(smap)``
    (``smap > min(smap)`` where the quantile is the minimum).

    Parameters
    ----------
    smap : array_like, (H, W) real, finite
    quantile : float in [0, 1]

    Returns
    -------
    mask : ndarray, (H, W) bool
    box : tuple of int, (x0, y0, x1, y1), exclusive
    """
    smap = _check_smap(smap)
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    t = np.quantile(smap, quantile)
    above = smap >= t
    if t == smap.min() and smap.max() > t:
        above = smap > t     # a mostly-zero map: its zeros are not salient, whatever the quantile
    mask = largest_component(above)
    return mask, bounding_box(mask)


def box_iou(a, b):
    """Intersection over union of two boxes ``(x0, y0, x1, y1)`` (exclusive ends).

    Returns 0.0 when the union has no area.
    """
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    if ax1 < ax0 or ay1 < ay0 or bx1 < bx0 or by1 < by0:
        raise ValueError(f"boxes must have x0 <= x1 and y0 <= y1, got {a} and {b}")
    iw = max(0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_iou(a, b):
    """Intersection over union of two boolean masks of the same shape (0.0 if both empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} and {b.shape}")
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0
