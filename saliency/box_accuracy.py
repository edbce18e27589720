"""MaxBoxAccV2 (Choe et al. 2020, "Evaluating Weakly Supervised Object Localization Methods Right",
CVPR 2020): the box accuracy of a thresholded map at its best threshold, so that a map is not judged
by one arbitrary threshold; the threshold is chosen on held-out images, never the test images.

It follows their code (clovaai/wsolevaluation, ``evaluation.py``), step by step:

1. **Normalise** each map to [0, 1]: ``s = (m - min m) / max(m - min m)`` (``normalize_scoremap``
   in their ``inference.py``; a constant map becomes all zeros).
2. **Threshold** at every ``t`` of ``np.arange(0, 1, 0.001)`` (``cam_curve_interval`` 0.001) the
   map quantised to bytes as ``cv2.threshold`` sees it: a pixel is in when
   ``uint8(255 s) > int(t * max uint8(255 s))`` (``compute_bboxes_from_scoremaps``). Only the 255
   distinct byte levels are computed; each ``t`` takes its level's boxes.
3. **All boxes of all components** (``multi_contour_eval=True``, the V2 setting): one box per
   8-connected component of the pixels in. Their code boxes every contour ``cv2.RETR_TREE`` finds
   (holes too, whose boxes lie inside their component's) with ``x1 = min(x + w, W - 1)``, one pixel
   wider than the component where it does not touch the border; here each box is the component's
   tight box.
4. **A hit** when some box has IoU >= delta with some ground-truth box of the class
   (``max(multiple_iou.max(1))`` per threshold in ``BoxEvaluator.accumulate``); IoU on inclusive
   pixels (their ``calculate_multiple_iou``, the devkit's arithmetic).
5. **MaxBoxAcc(delta)**: the fraction of images hit at the best threshold; **MaxBoxAccV2**: its mean
   over delta in {0.3, 0.5, 0.7} (``iou_threshold_list`` [30, 50, 70], ``multi_iou_eval``), each delta
   with its own best threshold (``BoxEvaluator.compute``). Their best threshold is taken on the
   images scored; here it is chosen on held-out images when they are given (:func:`max_box_acc_v2`).
"""
import numpy as np

from .localise import label_components

IOU_THRESHOLDS = (0.3, 0.5, 0.7)                   # Choe et al.'s delta
MAP_THRESHOLDS = np.arange(0, 1, 0.001)            # their cam_curve_interval


def normalise_map(smap):
    """(H, W) map -> [0, 1]: minus its minimum, over the maximum of that (all zeros if constant)."""
    s = np.asarray(smap, np.float64)
    s = s - s.min()
    top = s.max()
    return s / top if top > 0 else np.zeros_like(s)


def byte_levels(top, thresholds=MAP_THRESHOLDS):
    """The byte level each map threshold cuts at: their ``int(threshold * np.max(scoremap_image))``,
    ``top`` being that maximum (255 for any map that is not constant)."""
    return np.array([int(t * top) for t in thresholds], np.int64)


def component_boxes(mask):
    """Tight boxes of every 8-connected component of ``mask``: (n, 4) int, (x0, y0, x1, y1) with
    exclusive ends, in raster order of the components."""
    labels, n = label_components(mask)
    ys, xs = np.nonzero(labels)                                       # raster order
    lab = labels[ys, xs] - 1                                          # (pixels,) component index
    order = np.argsort(lab, kind="stable")
    starts = np.searchsorted(lab[order], np.arange(n))                # (n,) first pixel of each
    xs, ys = xs[order], ys[order]
    if n == 0:
        return np.zeros((0, 4), np.int64)
    return np.stack([np.minimum.reduceat(xs, starts), np.minimum.reduceat(ys, starts),
                     np.maximum.reduceat(xs, starts) + 1, np.maximum.reduceat(ys, starts) + 1], axis=1)


def iou_matrix(a, b):
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), exclusive ends, counted on
    inclusive pixels as the devkit and wsolevaluation's ``calculate_multiple_iou`` do: (n, m)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 1, 4), np.asarray(b, np.float64).reshape(1, -1, 4)
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])      # (n, m)
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
             + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def iou_curve(smap, truth_boxes, to_image=None, thresholds=MAP_THRESHOLDS):
    """The best IoU of any component box with any ground-truth box, at each map threshold.

    Parameters
    ----------
    smap : (H, W) real, the map (any range: it is normalised here)
    truth_boxes : (m, 4) boxes of the class, exclusive ends, in the image's pixels
    to_image : optional function (n, 4) map boxes -> (n, 4) image boxes (offset and scale)
    thresholds : map thresholds in [0, 1)

    Returns
    -------
    (len(thresholds),) float: 0 where the threshold leaves no pixel
    """
    q = (normalise_map(smap) * 255).astype(np.uint8)                  # (H, W) as cv2 sees it
    levels = byte_levels(int(q.max()), thresholds)
    best = {}
    for k in np.unique(levels):
        boxes = component_boxes(q > k)
        if len(boxes) and to_image is not None:
            boxes = to_image(boxes)
        best[k] = float(iou_matrix(boxes, truth_boxes).max()) if len(boxes) and len(truth_boxes) else 0.0
    return np.array([best[k] for k in levels])


def box_accuracy(curves, deltas=IOU_THRESHOLDS):
    """(len(deltas), thresholds): the fraction of images hit at IoU >= delta at each map threshold,
    from ``curves`` (images, thresholds) of :func:`iou_curve`."""
    curves = np.asarray(curves, np.float64)
    return (curves[None, :, :] >= np.asarray(deltas)[:, None, None]).mean(axis=1)


def max_box_acc_v2(curves, heldout=None, deltas=IOU_THRESHOLDS, thresholds=MAP_THRESHOLDS):
    """MaxBoxAccV2 of the test images' ``curves`` (images, thresholds).

    The map threshold of each delta is the one with the best accuracy on ``heldout`` (curves of
    other images, as Choe et al. prescribe: thresholds are hyperparameters, chosen on held-out
    data), or, when ``heldout`` is None, on the test images themselves (their code's MaxBoxAcc:
    optimistic). Ties go to the lowest threshold.

    Returns
    -------
    dict: ``value`` (the mean over deltas), ``by_iou`` {delta: accuracy}, ``thresholds``
    {delta: chosen map threshold}, ``chosen_on`` ("held-out" or "test"), ``n_heldout``
    """
    test = box_accuracy(curves, deltas)                               # (deltas, thresholds)
    pick = test if heldout is None else box_accuracy(heldout, deltas)
    best = pick.argmax(axis=1)                                        # (deltas,) first maximum
    by_iou = {float(d): float(test[i, j]) for i, (d, j) in enumerate(zip(deltas, best))}
    return {"value": float(np.mean(list(by_iou.values()))), "by_iou": by_iou,
            "thresholds": {float(d): round(float(thresholds[j]), 6) for d, j in zip(deltas, best)},
            "chosen_on": "test" if heldout is None else "held-out",
            "n_heldout": 0 if heldout is None else int(len(heldout))}
