"""The ILSVRC localisation protocol on hand-made cases, and the per-image pipeline on a small net."""
import numpy as np
import pytest

import saliency
from models import preprocess, shapes
from saliency import evaluation as E
from saliency.localise import box_iou

from .twin import random_vgg


def test_inclusive_conversion_and_devkit_iou(rng):
    assert E.to_inclusive((0, 0, 1, 1)) == (0, 0, 0, 0)                 # one pixel
    assert E.from_inclusive((3, 4, 10, 20)) == (3, 4, 11, 21)
    # inclusive pixels: two 2x2 boxes sharing one pixel -> 1 / (4 + 4 - 1)
    assert E.devkit_iou((0, 0, 1, 1), (1, 1, 2, 2)) == pytest.approx(1 / 7, abs=0)
    assert E.devkit_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0               # apart
    assert E.devkit_iou((0, 0, 1, 1), (2, 0, 3, 1)) == 0.0               # side by side, no shared pixel
    # with the conversion, the devkit's inclusive IoU is the project's exclusive-box IoU
    for _ in range(200):
        a = rng.integers(0, 50, 4)
        b = rng.integers(0, 50, 4)
        a = (min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]) + 1, max(a[1], a[3]) + 1)
        b = (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]) + 1, max(b[1], b[3]) + 1)
        assert E.devkit_iou(E.to_inclusive(a), E.to_inclusive(b)) == pytest.approx(box_iou(a, b), abs=1e-12)
        assert E.from_inclusive(E.to_inclusive(a)) == a


def test_the_devkit_rule():
    gt = [(3, (0, 0, 100, 1))]                                           # 100 x 1 pixels, class 3
    assert E.best_iou(3, (0, 0, 49, 1), gt) == pytest.approx(0.49)
    assert not E.is_correct(3, (0, 0, 49, 1), gt)                        # right class, IoU 0.49: wrong
    assert E.is_correct(3, (0, 0, 50, 1), gt)                            # IoU 0.50: right
    assert not E.is_correct(4, (0, 0, 100, 1), gt)                       # wrong class, IoU 1: wrong
    several = [(3, (50, 50, 60, 60)), (4, (0, 0, 10, 10)), (3, (0, 0, 10, 10))]
    assert E.is_correct(3, (0, 0, 10, 10), several)                      # the second box of class 3
    assert E.best_iou(4, (50, 50, 60, 60), several) == 0.0               # a class-4 guess on a class-3 box
    # boxes touching the border: the whole 64 x 48 image against an object on its right edge
    assert E.is_correct(1, (0, 0, 64, 48), [(1, (20, 0, 64, 48))])       # 44 * 48 / (64 * 48) = 0.69
    assert not E.is_correct(1, (0, 0, 64, 48), [(1, (40, 0, 64, 48))])   # 0.375


def test_errors_over_guesses_and_images():
    objects = [(7, (0, 0, 10, 10))]
    g = [{"class": 2, "correct": False}, {"class": 7, "correct": False}, {"class": 7, "correct": True}]
    assert E.image_errors(g, objects, 1) == (1.0, 1.0)
    assert E.image_errors(g, objects, 2) == (1.0, 0.0)                   # right class, box not good enough
    assert E.image_errors(g, objects, 5) == (0.0, 0.0)
    records = [{"guesses": g, "objects": objects, "pointing_box": True, "pointing_box_tolerant": True},
               {"guesses": g[2:], "objects": objects, "pointing_box": False, "pointing_box_tolerant": None}]
    s = E.summarise(records)
    assert s == pytest.approx({"n_images": 2, "top1_loc_error": 0.5, "top1_cls_error": 0.5, "top5_loc_error": 0.0,
                               "top5_cls_error": 0.0, "pointing_box": 0.5, "pointing_box_tolerant": 1.0,
                               "pointing_mask": np.nan, "pointing_mask_tolerant": np.nan}, nan_ok=True)
    # the threshold boxes' errors beside GraphCut's, and MaxBoxAccV2 from the curves
    for r, hit in zip(records, (True, False)):
        r["by_localiser"] = {"graphcut": r["guesses"], "threshold": [{"class": 7, "correct": hit}]}
        r["iou_curve"] = [0.6, 0.6, 0.2] if hit else [0.1, 0.8, 0.8]
    s = E.summarise(records, heldout=[{"iou_curve": [0.0, 0.0, 0.9]}])
    assert s["top1_loc_error_threshold"] == s["top5_loc_error_threshold"] == 0.5
    assert s["maxboxacc_v2_thresholds"] == {"0.3": 0.002, "0.5": 0.002, "0.7": 0.002}     # the held-out's third
    assert s["maxboxacc_v2_by_iou"] == {"0.3": 0.5, "0.5": 0.5, "0.7": 0.5}
    assert s["maxboxacc_v2_chosen_on"] == "held-out images" and s["maxboxacc_v2_n_heldout"] == 1
    s = E.summarise(records)                                              # on the test images: optimistic
    assert s["maxboxacc_v2_by_iou"] == {"0.3": 1.0, "0.5": 1.0, "0.7": 0.5}
    assert s["maxboxacc_v2_chosen_on"] == "the test images (optimistic)"


def test_pointing_game():
    region = E.boxes_region([(10, 10, 20, 20), (30, -5, 90, 12)], 40, 50)   # clipped to the image
    assert region.sum() == 100 + 20 * 12
    assert E.pointing_hit((15, 15), region) and not E.pointing_hit((25, 15), region)
    assert E.pointing_tolerance(224, 300) == 15 and E.pointing_tolerance(64, 64) == pytest.approx(15 * 64 / 224)
    assert E.pointing_tolerance(375, 500) == 15                           # TorchRay: the original image's pixels
    # (25, 15) is 6 rows below the box's last row 19: a hit within 6.5 px, not within 6 (TorchRay: distance < tol)
    assert E.pointing_hit((25, 15), region, 6.5) and not E.pointing_hit((25, 15), region, 6.0)
    # diagonal: from (25, 25) the nearest box pixel is (19, 19), at sqrt(72) = 8.49
    assert E.pointing_hit((25, 25), region, 8.5) and not E.pointing_hit((25, 25), region, 8.4)
    assert not E.pointing_hit((0, 0), np.zeros((5, 5), bool), 100)


def test_boxes_and_points_back_to_the_original_image():
    # a 500 x 375 image seen at 341 x 256: the frame's full box is the image's full box
    assert E.scale_box((0, 0, 341, 256), (256, 341), (375, 500)) == (0, 0, 500, 375)
    x0, y0, x1, y1 = E.scale_box((100, 50, 101, 51), (256, 341), (375, 500))   # one frame pixel
    assert (x0, y0) == (146, 73) and (x1, y1) == (149, 75)                 # covers its 1.47 x 1.46 pixels
    assert E.scale_box((3, 4, 10, 12), (64, 64), (64, 64)) == (3, 4, 10, 12)
    many = [(100, 50, 101, 51), (0, 0, 341, 256), (7, 3, 90, 200)]                  # all at once, from a window
    assert E.scale_boxes(np.array(many) - [5, 2, 5, 2], (2, 5), (256, 341), (375, 500)).tolist() == \
        [list(E.scale_box(b, (256, 341), (375, 500))) for b in many]
    assert E.scale_point((255, 340), (256, 341), (375, 500)) == (374, 499)
    assert E.scale_point((0, 0), (256, 341), (375, 500)) == (0, 0)
    m = np.zeros((4, 6), bool)
    m[1:3, 2:4] = True
    assert E.resize_mask(m, (8, 12)).sum() == 16 and E.resize_mask(m, (8, 12))[2:6, 4:8].all()


@pytest.fixture(scope="module")
def small():
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), classes=10, size=32)
    model.meta = dict(model.meta, resize=40, crop=32)                      # 10 crops of 32 in a 40-pixel shorter side
    return model


def test_ten_crop_maps_are_ten_crop_saliency(small):
    rgb = shapes.make_dataset(1, seed=3, size=40)[0][0][:, :]
    frame = preprocess.resize_shorter(np.concatenate([rgb, rgb[:, :13]], axis=1), 40)        # 40 x 53
    x = preprocess.normalise(frame, small.meta)
    maps, window = E.frame_maps(small, x, [2, 7], "guided", 10, batch=7)
    assert window == (0, 0, 40, 53)
    for c, m in zip([2, 7], maps):
        ref = saliency.ten_crop_saliency(small, x, c, rule="guided")
        assert m.dtype == np.float32 and m.shape == (40, 53)
        np.testing.assert_allclose(m, ref, rtol=1e-5, atol=1e-7 * float(ref.max()))
    maps, window = E.frame_maps(small, x, [2], "gradient", 1)
    y, x0 = E.crop_window((40, 53), (32, 32))
    assert window == (y, x0, y + 32, x0 + 32) and maps[0].shape == (32, 32)


@pytest.mark.parametrize("crops", [1, 10])
def test_evaluate_image_boxes_in_image_pixels(small, crops):
    images, labels, _, boxes = shapes.make_dataset(2, seed=4, size=48)
    rgb = np.asarray(preprocess.Image.fromarray(images[0]).resize((70, 48)))   # not square, not the frame
    objects = [(int(labels[0]), (3, 5, 60, 40)), (int(labels[0]), (0, 0, 70, 48))]
    r = E.evaluate_image(small, rgb, objects, method="gradient", crops=crops, top=3)
    assert [g["rank"] for g in r["guesses"]] == [1, 2, 3] and r["size"] == (48, 70)
    for g in r["guesses"]:
        x0, y0, x1, y1 = g["box"]
        assert 0 <= x0 < x1 <= 70 and 0 <= y0 < y1 <= 48
        assert g["correct"] == E.is_correct(g["class"], g["box"], objects)
    assert isinstance(r["pointing_box"], bool) and isinstance(r["pointing_box_tolerant"], bool)
    assert r["pointing_box_tolerant"] or not r["pointing_box"]
    assert r["pointing_mask"] is None and r["pointing_mask_tolerant"] is None      # no mask given
    assert len(r["iou_curve"]) == 1000 and max(r["iou_curve"]) <= 1


def test_maps_only_for_held_out_images(small):
    """localiser=() boxes nothing: the map's IoU curve and pointing (here on a mask) only."""
    rgb = np.random.default_rng(6).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[5:20, 5:20] = True
    r = E.evaluate_image(small, rgb, [(2, (5, 5, 20, 20))], crops=1, classes="truth", localiser=(), truth_mask=mask)
    assert r["guesses"] == [] and r["by_localiser"] == {}
    assert r["pointing_mask"] == r["pointing_box"] and len(r["iou_curve"]) == 1000


def test_evaluate_image_refuses_unknown_settings(small):
    rgb = np.zeros((40, 40, 3), np.uint8)
    for kwargs, word in (({"method": "saliency"}, "method"), ({"crops": 5}, "crops"),
                         ({"classes": "all"}, "classes"), ({"localiser": "box"}, "localiser"),
                         ({"localiser": ("graphcut", "box")}, "localiser")):
        with pytest.raises(ValueError, match=f"{word} must be one of"):
            E.evaluate_image(small, rgb, [(0, (0, 0, 4, 4))], **kwargs)


def test_several_localisers_share_the_maps_and_match_separate_runs(small):
    """localiser=(a, b) localises the same maps with each: its guesses are exactly those of two runs."""
    rgb = np.random.default_rng(5).integers(0, 256, (48, 70, 3), dtype=np.uint8)
    objects = [(1, (10, 5, 40, 30))]
    both = E.evaluate_image(small, rgb, objects, crops=1, top=2, localiser=("graphcut", "threshold"))
    for name in ("graphcut", "threshold"):
        alone = E.evaluate_image(small, rgb, objects, crops=1, top=2, localiser=name)
        assert [(g["class"], g["box"], g["iou"]) for g in both["by_localiser"][name]] == \
               [(g["class"], g["box"], g["iou"]) for g in alone["guesses"]], name
    assert both["guesses"] is both["by_localiser"]["graphcut"]
