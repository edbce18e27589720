"""Weakly supervised localisation: GraphCut from a saliency map, components, boxes, IoU."""
import numpy as np
import pytest
from skimage.filters import gaussian
from skimage.measure import label as sk_label

from saliency.localise import (bounding_box, box_iou, label_components, largest_component,
                               localise, mask_iou, threshold_box)

H, W = 96, 128


def scene(rng, objects):
    """A noisy image with a colour gradient background and filled ellipses on it.

    objects: list of (cy, cx, ry, rx, colour). Returns the uint8 image and one mask per object.
    """
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.empty((H, W, 3))
    img[:] = np.array([60.0, 110.0, 70.0])
    img += (xx / W * 70)[:, :, None] * np.array([1.0, 0.3, 0.6])    # left-right gradient
    masks = []
    for cy, cx, ry, rx, colour in objects:
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        img[m] = colour
        masks.append(m)
    img += rng.normal(0, 10, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), masks


def blurry_partial_map(rng, mask, sigma=4.0):
    """A saliency map that is strong on the right half of the object only, weak (0.3) on the
    left half, blurred, with noise: like a network's map, which peaks on the parts it uses."""
    cols = np.flatnonzero(mask.any(axis=0))
    weight = np.where(np.arange(W) >= cols.mean(), 1.0, 0.3)[None, :]
    smap = gaussian(mask * weight, sigma=sigma)
    return smap + rng.uniform(0, 0.02, smap.shape)


def test_recovers_object_from_blurry_partial_map():
    rng = np.random.default_rng(0)
    img, (obj,) = scene(rng, [(45, 70, 22, 32, (200, 60, 50))])
    smap = blurry_partial_map(rng, obj)
    mask, box, details = localise(img, smap, return_details=True)
    assert mask.dtype == bool and mask.shape == (H, W)
    assert mask_iou(mask, obj) >= 0.9
    assert box_iou(box, bounding_box(obj)) >= 0.9
    # the saliency map alone (its top 5%) covers only part of the object
    assert mask_iou(threshold_box(smap)[0], obj) < 0.5
    # soft labels: about 5% and 30% of the pixels; hard ones 0.5% each, inside them; all disjoint
    fg, bg = details["soft_fg"], details["soft_bg"]
    hard_fg, hard_bg = details["hard_fg"], details["hard_bg"]
    assert not (fg & bg).any() and not (hard_fg & ~fg).any() and not (hard_bg & ~bg).any()
    assert 0.04 <= fg.mean() <= 0.06 and 0.29 <= bg.mean() <= 0.31
    assert 0.004 <= hard_fg.mean() <= 0.006 and 0.004 <= hard_bg.mean() <= 0.006
    # the cut holds the hard labels only
    assert details["graphcut_mask"][hard_fg].all() and not details["graphcut_mask"][hard_bg].any()
    assert details["beta"] > 0


def test_soft_labels_train_the_colours_and_only_hard_ones_are_clamped():
    """A map centred near the object's right edge: its top 5% (the soft foreground) spills 8 px onto
    the background, its top 0.5% (the hard foreground) lies inside the object. The authors' scheme
    fits the colours on the spill but clamps only the hard pixels, so colour and edges give the
    object; clamping every soft label (``hard=soft``, gamma kept at 150) holds the spill to the
    foreground and cuts the object's left part away (IoU 0.66 and 0.68 against 1.0)."""
    for seed in range(2):
        rng = np.random.default_rng(seed)
        img, (obj,) = scene(rng, [(48, 60, 18, 22, (200, 50, 40))])
        yy, xx = np.mgrid[0:H, 0:W]
        smap = np.exp(-((yy - 48) ** 2 + (xx - 76) ** 2) / (2 * 9.0 ** 2)) + rng.uniform(0, 0.01, (H, W))
        mask, box, details = localise(img, smap, return_details=True)
        assert (details["soft_fg"] & ~obj).sum() > 150 and not (details["hard_fg"] & ~obj).any()
        assert box == bounding_box(obj)
        _, box_clamped = localise(img, smap, hard=(0.95, 0.30))
        assert box_iou(box_clamped, bounding_box(obj)) < 0.75
        assert box_clamped[2] > bounding_box(obj)[2]               # the spill is in the box


def test_box_is_exclusive_and_tight():
    rng = np.random.default_rng(1)
    img, (obj,) = scene(rng, [(50, 60, 15, 20, (230, 230, 40))])
    mask, box = localise(img, blurry_partial_map(rng, obj))
    x0, y0, x1, y1 = box
    ys, xs = np.nonzero(mask)
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert mask[y0:y1, x0:x1].sum() == mask.sum()
    assert all(isinstance(v, int) for v in box)


def test_largest_component_is_kept():
    rng = np.random.default_rng(2)
    colour = (40, 40, 220)
    img, (big, small) = scene(rng, [(45, 40, 20, 25, colour), (45, 105, 8, 8, colour)])
    smap = gaussian((big | small).astype(float), sigma=3) + rng.uniform(0, 0.02, (H, W))
    mask, box, details = localise(img, smap, return_details=True)
    cut = details["graphcut_mask"]
    assert cut[small].mean() > 0.9 and cut[big].mean() > 0.9      # the cut finds both
    assert mask_iou(mask, big) >= 0.9 and not mask[small].any()  # the box is the big one's
    assert box_iou(box, bounding_box(big)) >= 0.9


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    img, (obj,) = scene(rng, [(40, 64, 18, 30, (250, 180, 200))])
    smap = blurry_partial_map(rng, obj)
    a, b = localise(img, smap, seed=5), localise(img, smap, seed=5)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_grey_and_float_images_accepted():
    rng = np.random.default_rng(4)
    img, (obj,) = scene(rng, [(48, 64, 20, 20, (250, 250, 250))])
    smap = blurry_partial_map(rng, obj)
    grey = img.mean(axis=2).astype(np.uint8)
    assert mask_iou(localise(grey, smap)[0], obj) >= 0.85
    assert mask_iou(localise(img / 255.0, smap)[0], localise(img, smap)[0]) > 0.99


def test_label_components_matches_skimage():
    rng = np.random.default_rng(5)
    for density in (0.2, 0.45, 0.6):
        m = rng.random((40, 57)) < density
        ours, n = label_components(m)
        ref, n_ref = sk_label(m, connectivity=2, return_num=True)
        assert n == n_ref
        # the same partition: a one-to-one map between our labels and skimage's
        pairs = set(zip(ours[m].tolist(), ref[m].tolist()))
        assert len(pairs) == n and len({p[0] for p in pairs}) == n == len({p[1] for p in pairs})
        assert (ours[~m] == 0).all()


def test_largest_component_uses_8_connectivity():
    m = np.zeros((6, 6), bool)
    m[0, 0] = m[1, 1] = m[2, 2] = True        # a diagonal line: one 8-connected component
    m[4, 0] = m[4, 1] = True                  # a separate pair
    assert np.array_equal(largest_component(m), np.eye(6, dtype=bool) & (np.arange(6) < 3))
    assert not largest_component(np.zeros((3, 3), bool)).any()


def test_threshold_box():
    smap = np.zeros((20, 30))
    smap[5:9, 10:16] = 1.0          # 24 pixels, 4% of 600: the top 5% includes all of them
    smap[15, 25] = 2.0              # the maximum, but a single pixel
    mask, box = threshold_box(smap, quantile=0.95)   # the quantile is 0: zeros not included
    assert box == (10, 5, 16, 9) and mask.sum() == 24
    smap = smap + np.linspace(0, 0.5, 30)[None, :]       # now the threshold is 0.5: the
    # right-most column (20 pixels) passes too, a smaller component than the block
    mask, box = threshold_box(smap, quantile=0.95)
    assert box == (10, 5, 16, 9) and mask.sum() == 24


def test_box_and_mask_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0     # touching: exclusive ends
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    with pytest.raises(ValueError):
        box_iou((5, 0, 0, 5), (0, 0, 1, 1))
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(a, np.zeros((3, 3), bool))


@pytest.mark.parametrize("rgb, smap, kwargs, message", [
    (np.zeros((10, 12, 3), np.uint8), np.random.rand(10, 11), {}, "does not match"),
    (np.zeros((10, 12, 3), np.uint8), np.random.rand(10, 12, 1), {}, "2-D"),
    (np.zeros((10, 12, 3), np.uint8), np.full((10, 12), np.nan), {}, "NaN"),
    (np.zeros((10, 12, 4), np.uint8), np.random.rand(10, 12), {}, r"\(H, W, 3\)"),
    (np.zeros((10, 12, 3), np.uint16), np.random.rand(10, 12), {}, "uint8"),
    (np.full((10, 12, 3), 2.0), np.random.rand(10, 12), {}, r"\[0, 1\]"),
    (np.zeros((10, 12, 3), np.uint8), np.ones((10, 12)), {}, "constant"),
    (np.zeros((10, 12, 3), np.uint8), np.random.rand(10, 12),
     dict(soft=(0.3, 0.5)), "must nest"),
    (np.zeros((10, 12, 3), np.uint8), np.random.rand(10, 12), dict(hard=(0.9, 0.005)), "must nest"),
    (np.zeros((10, 12, 3), np.uint8), np.random.rand(10, 12), dict(gamma=-1.0), "gamma"),
], ids=["shape-mismatch", "smap-3d", "smap-nan", "rgba", "uint16", "float-range", "flat-map",
        "soft-quantiles", "hard-inside-soft", "gamma"])
def test_bad_inputs_raise(rgb, smap, kwargs, message):
    with pytest.raises(ValueError, match=message):
        localise(rgb, smap, **kwargs)
