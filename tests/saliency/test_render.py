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


def test_viridis_table():
    v = render.VIRIDIS
    assert v.shape == (256, 3) and v.dtype == np.uint8
    assert v[0].tolist() == [68, 1, 84] and v[-1].tolist() == [253, 231, 37]


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


def test_draw_box_and_outline():
    rgb = np.zeros((20, 30, 3), np.uint8)
    out = render.draw_box(rgb, (5, 4, 15, 12), colour=(255, 0, 0), width=1)
    assert not rgb.any()                                   # input untouched
    red = (out == [255, 0, 0]).all(axis=2)
    expected = np.zeros((20, 30), bool)
    expected[4:12, 5:15] = True
    expected[5:11, 6:14] = False                           # a 1-pixel frame inside the box
    assert np.array_equal(red, expected)
    assert render.draw_box(rgb, (-5, -5, 100, 100), width=2).shape == rgb.shape   # clipped

    mask = np.zeros((20, 30), bool)
    mask[3:8, 10:20] = True
    out = render.mask_outline(rgb, mask, colour=(0, 255, 0))
    green = (out == [0, 255, 0]).all(axis=2)
    inner = np.zeros_like(mask)
    inner[4:7, 11:19] = True
    assert np.array_equal(green, mask & ~inner)


def test_grid():
    small = render.heatmap(np.random.default_rng(2).random((64, 64)))
    g = render.grid([small, small[:, :, 0], np.ones((64, 64), bool)], titles=["a", "b", "c"],
                    ncols=2, caption="normalisation: min-max")
    assert g.dtype == np.uint8 and g.ndim == 3 and g.shape[2] == 3
    assert g.shape[1] >= 2 * 128                  # 64x64 enlarged to 128x128
    assert g.shape[0] >= 2 * 128 + 20             # two rows, titles and a caption
    # titles and caption are drawn: on white images, the only dark pixels are text
    white = np.full((64, 64, 3), 255, np.uint8)
    assert (render.grid([white], titles=["title"]) < 100).any()
    assert (render.grid([white], caption="caption") < 100).any()
    assert not (render.grid([white]) < 100).any()
    no_caption = render.grid([small], titles=["a"])
    assert no_caption.shape[0] < render.grid([small], titles=["a"], caption="x").shape[0]
    with pytest.raises(ValueError, match="titles"):
        render.grid([small, small], titles=["only one"])
    with pytest.raises(ValueError, match="uint8"):
        render.grid([np.zeros((4, 4))])


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
