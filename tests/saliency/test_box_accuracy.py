"""Pointing (mask and box) and MaxBoxAccV2 on hand-made maps whose values are known."""
import numpy as np
import pytest

from saliency import box_accuracy as B
from saliency import evaluation as E

OBJECT = (17, 17, 27, 27)                    # a 10 x 10 object; boxes (x0, y0, x1, y1), exclusive ends


def toy_map(halo, obj, size=64):
    """A map with the object at ``obj``, a 24 x 24 halo around it at ``halo`` < obj (its box has IoU
    100 / 576 = 0.17 with the object's: a miss at any delta) and a 2 x 2 blob at 1.0 far away (a
    second component, never near the object). Thresholds in [halo, obj) box the object alone."""
    m = np.zeros((size, size))
    m[10:34, 10:34] = halo
    m[17:27, 17:27] = obj
    m[50:52, 50:52] = 1.0
    return m


def test_pointing_mask_and_pointing_box_differ():
    # an L-shaped object: its box holds the corner the L leaves empty
    mask = np.zeros((64, 64), bool)
    mask[10:40, 10:16] = True
    mask[34:40, 10:40] = True
    objects = [(3, (10, 10, 40, 40))]
    corner = (15, 35)                                                     # (y, x): in the box, off the mask
    assert E.pointing_box(corner, 3, objects, (64, 64)) and not E.pointing_mask(corner, mask)
    assert not E.pointing_box(corner, 4, objects, (64, 64))              # another class's box: a miss
    assert E.pointing_mask((12, 12), mask) and E.pointing_box((12, 12), 3, objects, (64, 64))


def test_tolerance_decides_a_near_miss():
    mask = np.zeros((64, 64), bool)
    mask[20:30, 20:30] = True
    tol = E.pointing_tolerance(64, 64)                                    # 15 * 64 / 224 = 4.29 px
    assert tol == pytest.approx(4.2857, abs=1e-4)
    near, far = (33, 25), (35, 25)                                        # 4 and 6 rows below the last row
    assert not E.pointing_mask(near, mask) and E.pointing_mask(near, mask, tol)
    assert not E.pointing_mask(far, mask, tol)
    assert E.pointing_box(near, 0, [(0, (20, 20, 30, 30))], (64, 64), tol)
    # TorchRay's 15 px, unscaled on an image of at least 224: 14 px away is a hit, 15 is not (d < tol)
    big = np.zeros((300, 400), bool)
    big[100:150, 100:150] = True
    tol = E.pointing_tolerance(300, 400)
    assert tol == 15 and E.pointing_mask((163, 120), big, tol) and not E.pointing_mask((164, 120), big, tol)


def test_component_boxes_and_iou_matrix():
    m = toy_map(0.3, 0.6) > 0
    assert B.component_boxes(m).tolist() == [[10, 10, 34, 34], [50, 50, 52, 52]]
    assert B.component_boxes(np.zeros((5, 5), bool)).shape == (0, 4)
    diag = np.zeros((6, 6), bool)
    diag[[0, 1, 2], [0, 1, 2]] = True                                     # 8-connected: one component
    diag[4, 5] = True
    assert B.component_boxes(diag).tolist() == [[0, 0, 3, 3], [5, 4, 6, 5]]
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = (np.sort(rng.integers(0, 30, (2, 2)), axis=0).T.ravel()[[0, 2, 1, 3]] + [0, 0, 1, 1]
                for _ in range(2))
        assert B.iou_matrix([a], [b])[0, 0] == pytest.approx(E.best_iou(0, tuple(a), [(0, tuple(b))]), abs=1e-12)


def test_iou_curve_follows_the_thresholds():
    c = B.iou_curve(toy_map(0.2, 0.5), np.array([OBJECT]))
    t = B.MAP_THRESHOLDS
    assert len(c) == 1000
    hits = t[c >= 0.5]
    assert hits.min() == pytest.approx(0.2) and hits.max() == pytest.approx(0.498)   # [halo, obj)
    assert c[0] == pytest.approx(100 / 576)                                          # the halo's box
    assert np.all(c[(t >= 0.2) & (t < 0.498)] == 1.0)
    # any range: the map is normalised first (its minimum 0, its maximum 1)
    assert np.array_equal(B.iou_curve(3 + 7 * toy_map(0.2, 0.5), np.array([OBJECT])), c)
    assert not B.iou_curve(np.zeros((8, 8)), np.array([(0, 0, 4, 4)])).any()         # a constant map: no box
    # several components at once: a hit on the second of two ground-truth boxes counts
    assert B.iou_curve(toy_map(0.2, 0.5), np.array([(0, 0, 3, 3), OBJECT]))[300] == 1.0


def test_max_box_acc_v2_on_a_toy_set():
    # image 1 hits for thresholds in [0.2, 0.5), image 2 in [0.4, 0.7): both only in [0.4, 0.5)
    test = [B.iou_curve(toy_map(h, o), np.array([OBJECT])) for h, o in ((0.2, 0.5), (0.4, 0.7))]
    acc = B.box_accuracy(test)
    assert acc.shape == (3, 1000) and acc.max() == 1.0
    assert B.MAP_THRESHOLDS[np.flatnonzero(acc[1] == 1.0)].tolist() == pytest.approx(np.arange(400, 499) / 1000)
    r = B.max_box_acc_v2(test)
    assert r["value"] == 1.0 and r["thresholds"] == {0.3: 0.4, 0.5: 0.4, 0.7: 0.4} and r["chosen_on"] == "test"
    # a halo box with IoU 0.4 (10 x 25 around the object): a hit at 0.3, not at 0.5 or 0.7
    m = np.zeros((64, 64))
    m[17:27, 10:35] = 0.3
    m[17:27, 17:27] = 0.6
    c = B.iou_curve(m, np.array([OBJECT]))
    assert c[0] == pytest.approx(0.4)
    r = B.max_box_acc_v2([c])
    # normalised, the halo is at 0.5 of the map: out from t = 0.499 on (as cv2 sees the map in bytes,
    # uint8(0.5 * 255) = 127 is not above int(0.499 * 255) = 127)
    assert r["by_iou"] == {0.3: 1.0, 0.5: 1.0, 0.7: 1.0} and r["thresholds"] == {0.3: 0.0, 0.5: 0.499, 0.7: 0.499}


def test_held_out_thresholds_are_not_the_test_optimum():
    test = [B.iou_curve(toy_map(h, o), np.array([OBJECT])) for h, o in ((0.2, 0.5), (0.4, 0.7))]
    heldout = [B.iou_curve(toy_map(0.6, 0.9), np.array([OBJECT]))]      # its hits: [0.6, 0.9)
    r = B.max_box_acc_v2(test, heldout)
    assert r["thresholds"] == {0.3: 0.6, 0.5: 0.6, 0.7: 0.6}             # not the test set's 0.4
    assert r["by_iou"] == {0.3: 0.5, 0.5: 0.5, 0.7: 0.5} and r["value"] == 0.5   # image 1 is lost at 0.6
    assert r["chosen_on"] == "held-out" and r["n_heldout"] == 1
    assert B.max_box_acc_v2(test)["value"] == 1.0                         # the optimistic figure
