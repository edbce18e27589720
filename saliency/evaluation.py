"""The ILSVRC localisation protocol on one image and over a data set (paper Sec. 3.2, Table 3).

**Scoring**, as the ILSVRC devkit's ``eval_clsloc.m`` does it. Each image gets up to five guesses,
each a class and one box. A guess is *correct* when its class is one of the image's ground-truth
classes and its box overlaps some ground-truth box of that class with IoU >= 0.5. The image's top-k
localisation error is 1 when none of its first k guesses is correct; its top-k classification error
is 1 when none of their classes is a ground-truth class. Data-set errors are the means over images.

**Boxes.** The project's boxes are ``(x0, y0, x1, y1)`` with ``x1`` and ``y1`` exclusive (the box
is ``image[y0:y1, x0:x1]``). The devkit's are inclusive pixel boxes ``(xmin, ymin, xmax, ymax)``
whose last column is ``xmax``, so ``xmax = x1 - 1``, and its IoU counts pixels: a width is
``xmax - xmin + 1``. :func:`devkit_iou` is eval_clsloc.m's arithmetic line for line on inclusive
boxes; everything else converts with :func:`to_inclusive` / :func:`from_inclusive`.

**Pointing game** (Zhang et al. 2016): the map of a ground-truth class *points* at the object when
its maximum (the first in raster order) lies on it. Two regions, two names: ``pointing_mask`` (the
object's mask, where one is known: the shapes benchmark) and ``pointing_box`` (the union of the
ground-truth boxes of the class, the only region ILSVRC has; TorchRay's ``voc_as_mask`` likewise).
Each is reported strict and with TorchRay's tolerance (``torchray/benchmark/pointing_game.py``,
``PointingGame.evaluate``: ``accept = (v + u) < tolerance**2``, a hit when any region pixel is closer
than ``tolerance`` = 15 pixels to the point, the map resized to the original image). The 15 pixels
are the original image's; an image smaller than TorchRay's 224 input (the 64 x 64 shapes) gets
``15 * min(H, W) / 224``. Means are over images (TorchRay averages per-class means).

**MaxBoxAccV2** (Choe et al. 2020) of the threshold boxes: ``box_accuracy.py``; each record carries
the ``iou_curve`` it needs, from the map of its first ground-truth class.

**Per image** (:func:`evaluate_image`): the top-k classes (scores averaged over the crops used),
for each a saliency map (the centre crop, or the 10 crops averaged in the resized image),
GMM + GraphCut + largest component + box (``localise``), the box scaled back to the original
image's pixels, then the rule above. :func:`evaluate_shard` runs a list of image files, loading the
network once per process (what a Dask worker calls).
"""
import functools
import math

import numpy as np

from .maps import METHODS  # noqa: F401  (the one list of map methods, maps.py)

MIN_OVERLAP = 0.5                  # the devkit's IoU threshold
POINTING_TOLERANCE = 15            # TorchRay: pixels of the original image
TORCHRAY_INPUT = 224               # TorchRay's network input (shorter side)
LOCALISERS = ("graphcut", "threshold")


# ------------------------------------------------------------------------- boxes and IoU
def to_inclusive(box):
    """(x0, y0, x1, y1) with exclusive ends -> the devkit's (xmin, ymin, xmax, ymax), inclusive."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return x0, y0, x1 - 1, y1 - 1


def from_inclusive(box):
    """The devkit's inclusive (xmin, ymin, xmax, ymax) -> (x0, y0, x1, y1) with exclusive ends."""
    xmin, ymin, xmax, ymax = (int(v) for v in box)
    return xmin, ymin, xmax + 1, ymax + 1


def devkit_iou(bb, bbgt):
    """IoU of two inclusive pixel boxes, as eval_clsloc.m computes it (0 when they do not meet)."""
    bi = (max(bb[0], bbgt[0]), max(bb[1], bbgt[1]), min(bb[2], bbgt[2]), min(bb[3], bbgt[3]))
    iw = bi[2] - bi[0] + 1
    ih = bi[3] - bi[1] + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    ua = ((bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1)
          + (bbgt[2] - bbgt[0] + 1) * (bbgt[3] - bbgt[1] + 1) - iw * ih)
    return iw * ih / ua


def best_iou(cls, box, objects):
    """Largest devkit IoU of ``box`` (exclusive ends) with the ground-truth boxes of class ``cls``.

    objects : list of (class index, box with exclusive ends). 0.0 when the class is not there.
    """
    return max((devkit_iou(to_inclusive(box), to_inclusive(b)) for c, b in objects if c == cls),
               default=0.0)


def is_correct(cls, box, objects, min_overlap=MIN_OVERLAP):
    """The devkit's rule: right class and IoU >= ``min_overlap`` with some box of that class."""
    return best_iou(cls, box, objects) >= min_overlap


# ----------------------------------------------------------------------------- pointing
def pointing_tolerance(height, width):
    """TorchRay's 15 pixels (of the original image), scaled down by ``min(H, W) / 224`` for an
    image smaller than TorchRay's 224 input: 4.3 pixels at 64 x 64."""
    return POINTING_TOLERANCE * min(1.0, min(height, width) / TORCHRAY_INPUT)


def pointing_hit(point, region, tolerance=0.0):
    """Whether ``point`` (y, x) is on ``region`` ((H, W) bool), or closer than ``tolerance`` pixels
    (Euclidean, centre to centre) to one of its pixels."""
    region = np.asarray(region, bool)
    y, x = int(point[0]), int(point[1])
    if tolerance <= 0:
        return bool(region[y, x])
    r = int(math.ceil(tolerance))
    y0, y1 = max(0, y - r), min(region.shape[0], y + r + 1)
    x0, x1 = max(0, x - r), min(region.shape[1], x + r + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]                                # (h, w) window around the point
    near = (yy - y) ** 2 + (xx - x) ** 2 < tolerance ** 2
    return bool((region[y0:y1, x0:x1] & near).any())


def pointing_mask(point, mask, tolerance=0.0):
    """Pointing on the object's mask (H, W) bool: is the map's maximum ``point`` (y, x) on it, or
    (``tolerance`` > 0) closer than that to one of its pixels? Zhang et al. 2016; TorchRay's
    ``PointingGame.evaluate`` with its ``mask``."""
    return pointing_hit(point, mask, tolerance)


def pointing_box(point, cls, objects, shape, tolerance=0.0):
    """Pointing in the box: is ``point`` (y, x) inside a ground-truth box of class ``cls``
    (``objects``: (class, box) pairs, exclusive ends), or closer than ``tolerance`` to one, in an
    image of ``shape`` (H, W)? TorchRay's pointing game on VOC, whose region is the class's boxes."""
    return pointing_hit(point, boxes_region([b for c, b in objects if c == cls], *shape), tolerance)


def boxes_region(boxes, height, width):
    """(H, W) bool: the union of boxes (exclusive ends), clipped to the image."""
    region = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        region[max(0, y0):max(0, min(height, y1)), max(0, x0):max(0, min(width, x1))] = True
    return region


# ------------------------------------------------------------------------- the data set
def image_errors(guesses, objects, k):
    """(localisation error, classification error) of one image for its first ``k`` guesses.

    guesses : list of dicts with ``class`` and ``correct`` (best first).
    """
    first = guesses[:k]
    truth = {c for c, _ in objects}
    return (float(not any(g["correct"] for g in first)), float(not any(g["class"] in truth for g in first)))


POINTING_KEYS = ("pointing_mask", "pointing_mask_tolerant", "pointing_box", "pointing_box_tolerant")


def summarise(records, heldout=None):
    """summary.json's numbers from per-image records (``guesses``, ``objects``, optionally
    ``by_localiser``, the ``POINTING_KEYS``, ``iou_curve``): localisation errors over all images (of
    the GraphCut guesses, and ``*_threshold`` of the threshold boxes when the records have them),
    pointing over the images that have a value, and MaxBoxAccV2 of the threshold boxes, its map
    thresholds chosen on the ``heldout`` records' curves (None: on these records, optimistic)."""
    from .box_accuracy import max_box_acc_v2
    n = len(records)
    out = {"n_images": n}
    for k in (1, 5):
        errs = [image_errors(r["guesses"], r["objects"], k) for r in records]
        out[f"top{k}_loc_error"] = float(np.mean([e[0] for e in errs])) if n else float("nan")
        out[f"top{k}_cls_error"] = float(np.mean([e[1] for e in errs])) if n else float("nan")
        if n and all("threshold" in r.get("by_localiser", {}) for r in records):
            out[f"top{k}_loc_error_threshold"] = float(np.mean(
                [image_errors(r["by_localiser"]["threshold"], r["objects"], k)[0] for r in records]))
    for key in POINTING_KEYS:
        hits = [r[key] for r in records if r.get(key) is not None]
        out[key] = float(np.mean(hits)) if hits else float("nan")
    curves = [r["iou_curve"] for r in records if r.get("iou_curve") is not None]
    if curves:
        held = None if heldout is None else [r["iou_curve"] for r in heldout if r.get("iou_curve") is not None]
        if held is not None and not held:
            raise ValueError("the held-out records have no iou_curve to choose map thresholds on")
        acc = max_box_acc_v2(curves, held)
        out.update(maxboxacc_v2=acc["value"], maxboxacc_v2_by_iou={str(d): v for d, v in acc["by_iou"].items()},
                   maxboxacc_v2_thresholds={str(d): t for d, t in acc["thresholds"].items()},
                   maxboxacc_v2_chosen_on="held-out images" if held else "the test images (optimistic)",
                   maxboxacc_v2_n_heldout=acc["n_heldout"])
    return out


# ----------------------------------------------------------------------- one image
def crop_window(frame_shape, crop):
    """(y0, x0) of the centre crop of a resized image, with preprocess.resize_crop's rounding."""
    return int(round((frame_shape[0] - crop[0]) / 2.0)), int(round((frame_shape[1] - crop[1]) / 2.0))


def crop_windows(frame_shape, crop, crops):
    """The crops' windows (y0, x0, mirrored) in a resized image: its centre crop, or the 10 crops."""
    from saliency.maps import ten_crops
    if crops == 10:
        return ten_crops(frame_shape[0], frame_shape[1], crop[0])
    y, x = crop_window(frame_shape, crop)
    return [(y, x, False)]


def _cut(frame_x, windows, crop):
    ch, cw = crop
    return np.ascontiguousarray(np.stack([frame_x[:, y:y + ch, x:x + cw][:, :, ::-1] if m
                                          else frame_x[:, y:y + ch, x:x + cw] for y, x, m in windows]))


def crop_mean_logits(model, frame_x, crops):
    """Logits (classes,) of an image (3, H, W) in the model's input space at the resized size,
    averaged over the crops used (the centre crop, or the 10 crops)."""
    from models import network
    crop = model.config.input_size
    batch = _cut(frame_x, crop_windows(frame_x.shape[1:], crop, crops), crop)      # (crops, 3, ch, cw)
    return network.logits(model, batch).mean(axis=0)


def frame_maps(model, frame_x, targets, method, crops, smooth_n=25, seed=0, batch=10):
    """Saliency maps of the classes ``targets`` for an image (3, H, W) at the resized size, and the
    window (y0, x0, y1, x1) of it they cover: the centre crop, or (10 crops) the whole image, each
    crop's map flipped back if mirrored, pasted where it came from and averaged where crops overlap
    (as ``saliency.ten_crop_saliency``). Every (class, crop) pair is one image of a batch of at most
    ``batch``. Returns a list of maps, one per target, and the window."""
    from saliency import maps
    crop = model.config.input_size
    H, W = frame_x.shape[1:]
    if crops == 10 and method == "smoothgrad":
        raise ValueError("--crops 10 is not available with --method smoothgrad")
    windows = crop_windows((H, W), crop, crops)
    cut = _cut(frame_x, windows, crop)                                     # (crops, 3, ch, cw)
    pairs = [(t, w) for t in targets for w in range(len(windows))]
    out = []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i:i + batch]
        x = cut[[w for _, w in chunk]]                                     # (b, 3, ch, cw)
        t = np.array([c for c, _ in chunk], np.int64)
        out.append(maps.method_maps(model, x, t, method, smooth_n=smooth_n, seed=seed))
    per_crop = np.concatenate(out).reshape(len(targets), len(windows), crop[0], crop[1])
    if crops == 1:
        y, x, _ = windows[0]
        return list(per_crop[:, 0]), (y, x, y + crop[0], x + crop[1])
    count = np.zeros((H, W), np.float32)
    for y, x, _ in windows:
        count[y:y + crop[0], x:x + crop[1]] += 1
    result = []
    for crop_maps in per_crop:
        total = np.zeros((H, W), np.float32)
        for (y, x, m), smap in zip(windows, crop_maps):
            total[y:y + crop[0], x:x + crop[1]] += smap[:, ::-1] if m else smap
        result.append(total / np.maximum(count, 1))
    return result, (0, 0, H, W)


def scale_box(box, src_shape, dst_shape):
    """A box (exclusive ends) from an image of ``src_shape`` (H, W) to one of ``dst_shape``: the
    pixels it covers there (outward rounding), clipped to the image. One box of :func:`scale_boxes`."""
    return tuple(int(v) for v in scale_boxes([box], (0, 0), src_shape, dst_shape)[0])


def scale_boxes(boxes, origin, src_shape, dst_shape):
    """:func:`scale_box` of many boxes (n, 4) at once, each first moved by ``origin`` (y0, x0): the
    corners scaled by (W' / W, H' / H), rounded outwards (1e-9 absorbs the scaling's rounding), clipped."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4) + [origin[1], origin[0], origin[1], origin[0]]
    sy, sx = dst_shape[0] / src_shape[0], dst_shape[1] / src_shape[1]
    lo = np.maximum(0, np.floor(b[:, :2] * [sx, sy] + 1e-9))
    hi = np.minimum([dst_shape[1], dst_shape[0]], np.ceil(b[:, 2:] * [sx, sy] - 1e-9))
    return np.concatenate([lo, hi], axis=1).astype(np.int64)


def scale_point(point, src_shape, dst_shape):
    """A pixel (y, x) of an image of ``src_shape`` -> the pixel of ``dst_shape`` under its centre."""
    return tuple(min(d - 1, int((p + 0.5) * d / s)) for p, s, d in zip(point, src_shape, dst_shape))


def evaluate_image(model, rgb, objects, method="gradient", crops=10, top=5, truth_mask=None,
                   classes="top", localiser="graphcut", smooth_n=25, seed=0, batch=10, keep_masks=False,
                   graphcut=None):
    """Guesses and pointing for one image, every box in ``rgb``'s own pixels.

    Parameters
    ----------
    model : a classifier (``model.meta`` says how to resize and crop)
    rgb : (H, W, 3) uint8, the original image
    objects : list of (class index, box with exclusive ends), the ground truth
    method : one of METHODS (saliency.maps.method_maps): gradient | deconvnet | guided | smoothgrad |
        gradcam | guided-gradcam
    crops : 1 (centre crop) or 10 (the paper's 10 crops averaged)
    top : number of guesses (the top-k classes)
    truth_mask : (H, W) bool, optional: ``pointing_mask`` is scored on it (None without it)
    classes : "top" (the protocol: the network's top-k) or "truth" (the weak-label setting: one
        guess per ground-truth class, as the paper's benchmark assumes the class is known)
    localiser : "graphcut" (the paper) or "threshold" (the map's 95% quantile, no colour), or a tuple
        of them: each localises the same maps, and ``by_localiser`` holds each one's guesses; ``()``
        localises nothing (the maps' ``iou_curve`` and pointing only: held-out images)
    batch : (class, crop) pairs per gradient pass
    seed : SmoothGrad's noise seed
    keep_masks : also return each guess's mask (H, W) bool and map maximum (y, x)
    graphcut : keyword arguments of ``saliency.localise`` (soft, hard, gamma, n_components); None: its
        defaults, the authors' settings

    Returns
    -------
    dict with ``guesses`` (list of dicts: rank, class, score, box, iou, correct [, mask, point]; of
    the first localiser), ``by_localiser`` (localiser name -> its guesses), ``objects``, ``size``
    (H, W), the ``POINTING_KEYS`` (bool, or None when no ground-truth class, or no mask, could be
    scored) and ``iou_curve`` (list, :func:`saliency.box_accuracy.iou_curve` of the first ground-truth
    class's map at every map threshold, or None)
    """
    from models import preprocess
    from saliency.box_accuracy import iou_curve
    from saliency.localise import localise, threshold_box
    localisers = (localiser,) if isinstance(localiser, str) else tuple(localiser)
    for name, value, allowed in (("method", method, METHODS), ("crops", crops, (1, 10)),
                                 ("classes", classes, ("top", "truth")),
                                 *(("localiser", name, LOCALISERS) for name in localisers)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    H, W = rgb.shape[:2]
    ch, cw = model.config.input_size
    size = max(int(model.meta.get("resize") or 0), ch, cw)
    frame = preprocess.resize_shorter(rgb, size)                      # (Hr, Wr, 3), the crops' frame
    frame_x = preprocess.normalise(frame, model.meta)                 # (3, Hr, Wr)
    logits = crop_mean_logits(model, frame_x, crops)
    truth = list(dict.fromkeys(c for c, _ in objects))
    if classes == "truth":
        chosen = truth
    else:
        chosen = [int(i) for i in np.argsort(-logits, kind="stable")[:top]]
    wanted = chosen + [c for c in truth[:1] if c not in chosen]      # + the pointing game's class
    smaps, (y0, x0, y1, x1) = frame_maps(model, frame_x, wanted, method, crops, smooth_n, seed, batch)
    by_localiser = {}
    for name in localisers:                                          # each on the same maps
        guesses = by_localiser[name] = []
        for rank, (c, smap) in enumerate(zip(chosen, smaps), 1):
            if name == "graphcut":
                mask, box = localise(frame[y0:y1, x0:x1], smap, **(graphcut or {}))
            else:
                mask, box = threshold_box(smap, 0.95)
            box = scale_box((box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0), frame.shape[:2], (H, W))
            g = {"rank": rank, "class": c, "score": float(logits[c]), "box": box,
                 "iou": best_iou(c, box, objects)}
            g["correct"] = g["iou"] >= MIN_OVERLAP
            if keep_masks:
                full = np.zeros(frame.shape[:2], bool)
                full[y0:y1, x0:x1] = mask
                g["mask"] = resize_mask(full, (H, W))
                g["point"] = _map_max(smap, (y0, x0), frame.shape[:2], (H, W))
            guesses.append(g)
    record = {"guesses": by_localiser[localisers[0]] if localisers else [], "by_localiser": by_localiser,
              "objects": [(int(c), tuple(int(v) for v in b)) for c, b in objects],
              "size": (H, W), **dict.fromkeys(POINTING_KEYS), "iou_curve": None}
    if truth:                                                        # the first ground-truth class
        c, tol = truth[0], pointing_tolerance(H, W)
        smap = smaps[wanted.index(c)]
        point = _map_max(smap, (y0, x0), frame.shape[:2], (H, W))
        record["pointing_box"] = pointing_box(point, c, objects, (H, W))
        record["pointing_box_tolerant"] = pointing_box(point, c, objects, (H, W), tol)
        if truth_mask is not None:
            record["pointing_mask"] = pointing_mask(point, truth_mask)
            record["pointing_mask_tolerant"] = pointing_mask(point, truth_mask, tol)
        truth_boxes = np.array([b for k, b in objects if k == c], np.int64).reshape(-1, 4)
        to_image = functools.partial(scale_boxes, origin=(y0, x0), src_shape=frame.shape[:2], dst_shape=(H, W))
        record["iou_curve"] = iou_curve(smap, truth_boxes, to_image).tolist()
    return record


def _map_max(smap, origin, frame_shape, shape):
    """The map's maximum (first in raster order) as a pixel of the original image."""
    y, x = np.unravel_index(int(np.argmax(smap)), smap.shape)
    return scale_point((y + origin[0], x + origin[1]), frame_shape, shape)


def resize_mask(mask, shape):
    """A boolean mask to ``shape`` (H, W), nearest neighbour (pixel centres)."""
    if mask.shape == tuple(shape):
        return mask
    ys = np.minimum(((np.arange(shape[0]) + 0.5) * mask.shape[0] / shape[0]).astype(int), mask.shape[0] - 1)
    xs = np.minimum(((np.arange(shape[1]) + 0.5) * mask.shape[1] / shape[1]).astype(int), mask.shape[1] - 1)
    return mask[ys[:, None], xs[None, :]]


# ---------------------------------------------------------------------- a shard of images
@functools.lru_cache(maxsize=2)
def cached_model(path, device="cpu"):
    """The network of a weights file, loaded once per process (each Dask worker keeps its own)."""
    import models
    return models.load(path, device=device)


def evaluate_shard(items, weights, device="cpu", **settings):
    """Evaluate a list of images: ``items`` are (image id, image path, objects). Returns one record
    per image (see :func:`evaluate_image`) with its ``image`` id added. Runs where it is called:
    in this process, or on a Dask worker, which loads the network once and keeps it."""
    from models import preprocess
    model = cached_model(str(weights), device)
    records = []
    for image_id, path, objects in items:
        rgb, _ = preprocess.load_image(path)
        record = evaluate_image(model, rgb, objects, **settings)
        record["image"] = image_id
        records.append(record)
    return records
