"""Rendering: the colour map, heat maps and overlays, marks, grids, and atomic PNG writing."""
import os

import numpy as np
import pytest
from PIL import Image

from saliency import render


def lightness(rgb_uint8):
    """CIE L* of sRGB colours (..., 3) uint8."""
    c = rgb_uint8 / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


def test_viridis_table_is_matplotlibs():
    from matplotlib import colormaps
    v = render.VIRIDIS
    assert v.shape == (256, 3) and v.dtype == np.uint8
    assert v[0].tolist() == [68, 1, 84] and v[-1].tolist() == [253, 231, 37]
    ref = colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255
    assert np.abs(v - ref).max() <= 0.5                    # the same map, rounded to 8 bits


def test_colour_map_monotone_in_lightness():
    L = lightness(render.VIRIDIS)
    # Rounding to 8 bits leaves steps of -0.03 L* at most (invisible: 1 L* is a just
    # noticeable difference); over every 4 entries it strictly increases.
    assert np.diff(L).min() > -0.1
    assert np.all(np.diff(L[::4]) > 0)
    assert L[-1] - L[0] > 70


def test_heatmap_shapes_and_normalisation():
    rng = np.random.default_rng(0)
    smap = rng.random((17, 23))
    img, text = render.heatmap(smap, return_text=True)
    assert img.shape == (17, 23, 3) and img.dtype == np.uint8
    assert "min-max" in text
    assert img[np.unravel_index(smap.argmin(), smap.shape)].tolist() == [68, 1, 84]
    assert img[np.unravel_index(smap.argmax(), smap.shape)].tolist() == [253, 231, 37]
    # min-max makes it invariant to positive affine changes of the map
    assert np.array_equal(render.heatmap(3.0 * smap + 7.0), img)


def test_heatmap_clip_percentile():
    smap = np.arange(100.0).reshape(10, 10)
    img, text = render.heatmap(smap, clip_percentile=90, return_text=True)
    assert "90th percentile" in text and "clipped" in text
    top = smap >= np.percentile(smap, 90)                 # 90 .. 99, all clipped to 1
    assert (img[top] == render.VIRIDIS[-1]).all()
    assert not (img[smap < 88] == render.VIRIDIS[-1]).all(axis=1).any()
    with pytest.raises(ValueError, match="clip_percentile"):
        render.heatmap(smap, clip_percentile=0)


def test_heatmap_constant_and_bad_maps():
    img, text = render.heatmap(np.full((4, 5), 3.0), return_text=True)
    assert (img == render.VIRIDIS[0]).all() and "constant" in text
    with pytest.raises(ValueError, match="NaN"):
        render.heatmap(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="2-D"):
        render.heatmap(np.zeros((2, 3, 4)))


def test_overlay():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)
    smap = rng.random((12, 9))
    assert np.array_equal(render.overlay(rgb, smap, alpha=0.0), rgb)
    assert np.array_equal(render.overlay(rgb, smap, alpha=1.0), render.heatmap(smap))
    half = render.overlay(rgb, smap, alpha=0.5)
    assert half.dtype == np.uint8 and half.shape == rgb.shape
    with pytest.raises(ValueError, match="does not match"):
        render.overlay(rgb, smap[:-1])


def test_signed_map():
    g = np.zeros((3, 5, 7))
    assert (render.signed_map(g) == 128).all()
    g[0, 1, 2], g[1, 3, 4] = 2.0, -2.0
    img, text = render.signed_map(g, return_text=True)
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8
    assert img[1, 2, 0] == 255 and img[3, 4, 1] == 0 and img[0, 0, 2] == 128
    assert "max |g| = 2" in text
    assert render.signed_map(np.ones((4, 4))).shape == (4, 4, 3)


def test_localisation_verdict_is_the_real_iou():
    # truth 10x10 at (0, 0); found 10x10 shifted right by 3: intersection 70, union 130
    iou, passed, text = render.localisation_verdict((3, 0, 13, 10), (0, 0, 10, 10))
    assert iou == pytest.approx(70 / 130) and passed and text == "IoU 0.53 ≥ 0.5: pass"
    # shifted by 4: 60 / 140 = 0.43 -> fail; by 2: 80 / 120 = 0.67 -> pass
    assert render.localisation_verdict((4, 0, 14, 10), (0, 0, 10, 10))[2] == "IoU 0.42 < 0.5: fail"
    assert render.localisation_verdict((2, 0, 12, 10), (0, 0, 10, 10))[2] == "IoU 0.66 ≥ 0.5: pass"
    # exactly at the threshold passes (the paper: IoU >= 0.5); just below never prints as 0.50
    assert render.localisation_verdict((0, 0, 10, 10), (0, 0, 10, 20))[1:] == (True, "IoU 0.50 ≥ 0.5: pass")
    iou, passed, text = render.localisation_verdict((0, 0, 10, 10), (0, 0, 10, 21))
    assert iou < 0.5 and not passed and text == "IoU 0.47 < 0.5: fail"


def test_localisation_panel_titles_follow_the_boxes():
    rgb = np.zeros((20, 20, 3), np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[2:12, 4:14] = True
    panel, iou = render.localisation_panel(rgb, mask, (4, 2, 14, 12), truth=(4, 2, 14, 12))
    assert iou == 1.0 and panel.title == "GraphCut\nIoU 1.00 ≥ 0.5: pass" and panel.title_colour == "green"
    assert [k for _, k in panel.boxes] == ["found", "truth"] and panel.outline is mask
    panel, iou = render.localisation_panel(rgb, mask, (4, 2, 14, 12), truth=(10, 10, 20, 20))
    assert iou == pytest.approx(8 / 192) and panel.title == "GraphCut\nIoU 0.04 < 0.5: fail"
    assert panel.title_colour == "red"
    panel, iou = render.localisation_panel(rgb, mask, (4, 2, 14, 12))           # no truth: no verdict
    assert iou is None and panel.title == "GraphCut" and [k for _, k in panel.boxes] == ["found"]


def test_boxes_and_outlines_are_drawn_where_they_belong():
    grey = np.full((40, 40, 3), 128, np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:15] = True
    plain = render.grid([grey], min_size=200)
    marked = render.grid([render.Panel(grey, "", [((20, 20, 35, 35), "truth"), ((22, 22, 30, 30), "found")], mask)],
                         min_size=200)
    assert plain.shape == marked.shape
    changed = (plain != marked).any(axis=2)
    ys, xs = np.nonzero(changed)
    h, w = changed.shape
    assert changed.any()
    # the marks stay inside the picture: rows/cols from about 5/40 to 35/40 of its extent
    assert ys.min() > 0.05 * h and xs.min() > 0.05 * w and ys.max() < 0.95 * h and xs.max() < 0.95 * w
    red = (marked[:, :, 0] > 200) & (marked[:, :, 1] < 60) & (marked[:, :, 2] < 60)
    yellow = (marked[:, :, 0] > 200) & (marked[:, :, 1] > 200) & (marked[:, :, 2] < 60)
    white, black = (marked > 235).all(axis=2), (marked < 20).all(axis=2)
    assert red.any() and yellow.any() and white.any() and black.any()    # found, outline, truth + halos
    # the outline is in the top-left quarter, the found box in the bottom-right one
    yy, xx = np.nonzero(yellow)
    assert yy.max() < h / 2 and xx.max() < w / 2
    yy, xx = np.nonzero(red)
    assert yy.min() > h / 2 and xx.min() > w / 2


def test_legend_colourbar_and_caption_add_room():
    grey = np.full((40, 40, 3), 128, np.uint8)
    base = render.grid([grey])
    assert render.grid([grey], legend=("outline", "found", "truth")).shape[0] > base.shape[0]
    assert render.grid([grey], colourbar="value").shape[0] > base.shape[0]
    assert render.grid([grey], caption="word " * 200).shape[0] > render.grid([grey], caption="word").shape[0]
    assert "99th percentile" in render.scaling_caption(99) and "min-max" in render.scaling_caption(None)


def test_upscale_nearest():
    img = np.arange(4, dtype=np.uint8).reshape(2, 2)
    up = render.upscale(img, min_size=8)
    assert up.shape == (8, 8, 3)
    assert (up[:4, :4] == 0).all() and (up[4:, 4:] == 3).all()


def test_save_png_roundtrip_and_no_temp_files(tmp_path):
    img = np.random.default_rng(3).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "out.png"
    render.save_png(path, img)
    assert os.listdir(path.parent) == ["out.png"]
    with Image.open(path) as f:
        assert f.format == "PNG"
        assert np.array_equal(np.asarray(f.convert("RGB")), img)
    render.save_png(str(path), img[:, :, 0])           # overwrite, grey
    with Image.open(path) as f:
        assert np.array_equal(np.asarray(f), img[:, :, 0])
    assert os.listdir(path.parent) == ["out.png"]


def test_save_png_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    old = np.zeros((4, 4, 3), np.uint8)
    render.save_png(path, old)

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half a file")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        render.save_png(path, np.full((4, 4, 3), 255, np.uint8))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["out.png"]
    with Image.open(path) as f:
        assert np.array_equal(np.asarray(f), old)
    with pytest.raises(ValueError, match="uint8"):
        render.save_png(tmp_path / "bad.png", np.zeros((4, 4)))
    assert os.listdir(tmp_path) == ["out.png"]
