"""The synthetic shapes task: determinism, labels, and masks/boxes that match what is drawn."""
import numpy as np
import pytest

from models import shapes


def test_classes():
    assert len(shapes.CLASSES) == 10 and len(set(shapes.CLASSES)) == 10


def test_dataset_shapes_dtypes_and_labels():
    images, labels, masks, boxes = shapes.make_dataset(50, seed=0)
    assert images.shape == (50, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (50,) and labels.dtype == np.int64
    assert masks.shape == (50, 64, 64) and masks.dtype == bool
    assert boxes.shape == (50, 4) and np.issubdtype(boxes.dtype, np.integer)
    assert labels.min() >= 0 and labels.max() < 10
    assert np.array_equal(np.bincount(labels, minlength=10), np.full(10, 5))  # all, balanced
    assert images.std() > 20                                  # not blank


def test_same_seed_same_data_other_seed_differs():
    a = shapes.make_dataset(20, seed=3)
    b = shapes.make_dataset(20, seed=3)
    c = shapes.make_dataset(20, seed=4)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])
    # make_sample with the same generator state gives the same sample
    s1 = shapes.make_sample(np.random.default_rng(9))
    s2 = shapes.make_sample(np.random.default_rng(9))
    assert all(np.array_equal(x, y) for x, y in zip(s1, s2))


def test_boxes_contain_masks_tightly_and_object_inside_image():
    images, labels, masks, boxes = shapes.make_dataset(60, seed=1, size=48)
    for m, (x0, y0, x1, y1) in zip(masks, boxes):
        ys, xs = np.nonzero(m)
        assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert m[y0:y1, x0:x1].sum() == m.sum()
        # fully inside, not touching the border
        assert x0 >= 1 and y0 >= 1 and x1 <= 47 and y1 <= 47


@pytest.mark.parametrize("label", range(10), ids=shapes.CLASSES)
def test_mask_matches_drawn_pixels(label):
    """Without clutter the object is white on black and a pixel's grey level is 255 x its
    coverage (rounded): the mask must be exactly the pixels at least half white. Coverage is
    a multiple of 1/16 (0.5 -> 127.5 -> 128, 7/16 -> 111.6 -> 112), so 128 separates them."""
    rng = np.random.default_rng(100 + label)
    for _ in range(20):
        image, lab, mask, box = shapes.make_sample(rng, size=64, label=label, clutter=False)
        assert lab == label
        assert (image == image[:, :, :1]).all()              # grey
        grey = image[:, :, 0]
        assert np.array_equal(mask, grey >= 128)
        drawn = grey > 0
        assert drawn[mask].all()
        # everything drawn outside the mask is the anti-aliased fringe next to it: within
        # 2 pixels, because a sharp tip (triangle, star, crescent horn, arrow barb) tapers
        # over more than a pixel at less than half coverage
        near = np.zeros_like(mask)
        padded = np.pad(mask, 2)
        for dy in range(5):
            for dx in range(5):
                near |= padded[dy:dy + 64, dx:dx + 64]
        assert not (drawn & ~near).any()
        assert (grey[mask] > 0).all() and (grey[~drawn] == 0).all()


def test_object_size_range():
    _, _, masks, boxes = shapes.make_dataset(200, seed=2)
    extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    # the bounding circle's diameter is 30%-60% of 64 = 19.2 .. 38.4 pixels
    assert extent.min() >= 8 and extent.max() <= 39
    assert np.percentile(extent, 90) > 28 and np.percentile(extent, 10) < 22


def test_object_contrasts_with_local_background():
    images, _, masks, boxes = shapes.make_dataset(100, seed=5)
    for img, m, (x0, y0, x1, y1) in zip(images, masks, boxes):
        ring = np.zeros_like(m)
        ring[max(y0 - 3, 0):y1 + 3, max(x0 - 3, 0):x1 + 3] = True
        ring &= ~m
        obj = np.median(img[m].astype(float), axis=0)
        bg = img[ring].astype(float).mean(axis=0)
        # MIN_CONTRAST is 120 against the mean of the bounding square; strokes, noise and
        # the local gradient move the measured difference a little
        assert np.linalg.norm(obj - bg) > 70


def test_classes_distinct_under_rotation():
    """No class looks like a rotation of another: for every pair, the best overlap (IoU) of
    their silhouettes over 72 rotations is well below 1 (a square against a 45-degree
    rotated 'diamond' class would give 1)."""
    def silhouette(label, angle):
        return shapes._coverage(label, 32.0, 32.0, 28.0, angle, 64, 4) >= 0.5

    angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    rotated = {b: [silhouette(b, a) for a in angles] for b in range(10)}
    for a in range(10):
        sa = silhouette(a, 0.0)
        for b in range(a + 1, 10):
            best = max((sa & sb).sum() / (sa | sb).sum() for sb in rotated[b])
            assert best < 0.85, f"{shapes.CLASSES[a]} vs {shapes.CLASSES[b]}: IoU {best:.2f}"


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="label"):
        shapes.make_sample(rng, label=10)
    with pytest.raises(ValueError, match="size"):
        shapes.make_sample(rng, size=8)
