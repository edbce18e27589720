"""Image loading (every Pillow mode, EXIF, huge and broken files) and the preprocessing maths."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from models import preprocess
from models.formats.keras import CAFFE_BGR
from models.formats.pth import TORCHVISION_RGB
from models.preprocess import ImageError, load_image, prepare, prepare_batch, to_display

TV = dict(TORCHVISION_RGB, resize=256, crop=224, input_size=(224, 224))
CAFFE = dict(CAFFE_BGR, resize=256, crop=224, input_size=(224, 224))
TV224, CAFFE224 = dict(TV, resize=224), dict(CAFFE, resize=224)          # a 224x224 image: no resize


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)


def _save(tmp_path, name, im, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return path


def test_rgb_png_is_unchanged(tmp_path, rgb):
    out, notes = load_image(_save(tmp_path, "a.png", Image.fromarray(rgb)))
    assert out.dtype == np.uint8 and np.array_equal(out, rgb) and notes == []


def test_grey_and_palette(tmp_path, rgb):
    grey = rgb[:, :, 0]
    out, notes = load_image(_save(tmp_path, "g.png", Image.fromarray(grey)))
    assert out.shape == (40, 60, 3) and np.array_equal(out[:, :, 2], grey)
    assert "grey image converted to RGB" in notes[0]
    pal = Image.fromarray(rgb).convert("P")
    out, notes = load_image(_save(tmp_path, "p.png", pal))
    assert np.array_equal(out, np.asarray(pal.convert("RGB"))) and "palette" in notes[0]
    out, notes = load_image(_save(tmp_path, "b.png", Image.fromarray(grey > 128)))
    assert set(np.unique(out)) <= {0, 255} and "1-bit" in notes[0]


def test_alpha_is_composited_on_white(tmp_path, rgb):
    alpha = np.zeros((40, 60), np.uint8)
    alpha[:, 30:] = 255
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    out, notes = load_image(_save(tmp_path, "a.png", rgba))
    assert (out[:, :30] == 255).all() and np.array_equal(out[:, 30:], rgb[:, 30:])
    assert "RGBA with transparency: composited on white" in notes[0]
    la = Image.fromarray(np.dstack([rgb[:, :, 0], alpha]), "LA")
    out, notes = load_image(_save(tmp_path, "la.png", la))
    assert (out[:, :30] == 255).all() and "LA" in notes[0]


def test_16_bit_grey(tmp_path):
    a = (np.arange(40 * 60).reshape(40, 60) * 27).astype(np.uint16)          # up to 64773
    im = Image.fromarray(a)
    path = _save(tmp_path, "d.png", im)
    out, notes = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
    assert np.abs(out[:, :, 0].astype(int) - np.rint(a / 257)).max() <= 1
    assert "16-bit grey scaled to 8 bits" in notes[0]
    i32 = Image.fromarray(a.astype(np.int32))                                # mode 'I'
    out2, notes2 = load_image(_save(tmp_path, "i.tif", i32))
    assert np.array_equal(out2, out) and "16-bit" in notes2[0]


def test_float_and_cmyk(tmp_path, rgb):
    f = Image.fromarray(np.linspace(0, 1, 40 * 60, dtype=np.float32).reshape(40, 60), "F")
    out, notes = load_image(_save(tmp_path, "f.tif", f))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and "float grey" in notes[0]
    out, notes = load_image(_save(tmp_path, "c.jpg", Image.fromarray(rgb).convert("CMYK")))
    assert out.shape == (40, 60, 3) and "CMYK" in notes[0]


def test_exif_orientation(tmp_path, rgb):
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6                                                         # rotate 90 CW to display
    path = _save(tmp_path, "o.jpg", im, exif=exif, quality=95)
    out, notes = load_image(path)
    assert out.shape == (60, 40, 3) and notes == ["EXIF orientation 6 applied"]


def test_animation_uses_first_frame(tmp_path, rgb):
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out, notes = load_image(path)
    assert out.shape == (40, 60, 3) and "2 frames: using the first" in notes[0]


def _png_header_only(path, w, h):
    """A PNG that declares w x h pixels (Pillow reads the size without decoding anything)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))
    return path


def test_huge_images_refused_before_decoding(tmp_path):
    with pytest.raises(ImageError, match=r"12000x9000 is 108 megapixels; refusing images over 100"):
        load_image(_png_header_only(tmp_path / "big.png", 12000, 9000))
    with pytest.raises(ImageError, match="too large|megapixels"):                # Pillow's own limit
        load_image(_png_header_only(tmp_path / "bomb.png", 30000, 30000))
    with pytest.raises(ImageError, match="refusing"):
        load_image(_save(tmp_path, "s.png", Image.new("RGB", (20, 20))), max_pixels=100)


def test_bad_files(tmp_path, rgb):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageError, match="not an image file Pillow can read"):
        load_image(tmp_path / "text.jpg")
    data = _save(tmp_path, "ok.jpg", Image.fromarray(rgb)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cannot be decoded"):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_prepare_without_resize_is_exact_normalisation():
    img = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    x = prepare(img, TV224)
    assert x.dtype == np.float32 and x.shape == (3, 224, 224) and x.flags.c_contiguous
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    expected = (img.transpose(2, 0, 1).astype(np.float32) / np.float32(255) - mean) / std
    assert np.array_equal(x, expected)
    c = prepare(img, CAFFE224)
    bgr_mean = np.array([103.939, 116.779, 123.68], np.float32)[:, None, None]
    assert np.allclose(c, img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) - bgr_mean, atol=2e-5)


def test_input_stats_are_float32_per_channel_in_the_models_order():
    mean, std, scale = preprocess.input_stats(CAFFE224)
    assert mean.shape == std.shape == (3, 1, 1) and mean.dtype == std.dtype == np.float32
    assert mean.ravel().tolist() == np.float32([103.939, 116.779, 123.68]).tolist()      # BGR, as stored
    assert scale == 255 and scale.dtype == np.float32
    x = np.zeros((3, 4, 5), np.float32)
    assert (x * std + mean).shape == (3, 4, 5) and (x * std + mean).dtype == np.float32    # no float64


def test_resize_and_centre_crop_follow_torchvision():
    img = np.zeros((300, 500, 3), np.uint8)
    img[:, 250:] = 255                                                       # right half white
    small = preprocess.resize_crop(img, dict(TV, resize=256, crop=224))
    assert small.shape == (224, 224, 3)
    # shorter side 300 -> 256, longer 500 -> int(256 * 500 / 300) = 426; crop left = round(101) = 101
    ref = np.asarray(Image.fromarray(img).resize((426, 256), Image.BILINEAR))[16:240, 101:325]
    assert np.array_equal(small, ref)
    squash = preprocess.resize_crop(img, dict(TV, resize=None, crop=(20, 30)))
    assert squash.shape == (20, 30, 3)
    with pytest.raises(ValueError, match="smaller than the crop"):
        preprocess.resize_crop(img, dict(TV, resize=100, crop=224))


def test_batch_display_round_trip_and_float_discipline(photo):
    batch = prepare_batch([photo, photo[::2, ::3]], TV)
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32
    img = photo[:224, :224]
    for meta in (TV224, CAFFE224):
        back = to_display(prepare(img, meta), meta)
        assert back.dtype == np.uint8 and np.array_equal(back, img)
        assert np.array_equal(to_display(prepare(img, meta)[None], meta), img)
    stretched = to_display(np.zeros((3, 4, 4), np.float32) + np.arange(4, dtype=np.float32), TV, stretch=True)
    assert stretched.min() == 0 and stretched.max() == 255


def test_bad_arrays():
    with pytest.raises(ValueError, match="NaN or Inf"):
        prepare(np.full((224, 224, 3), np.nan, np.float32), TV)
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) RGB image"):
        prepare(np.zeros((224, 224), np.uint8), TV)
    with pytest.raises(ValueError, match="channel_order 'RGBA'"):
        prepare(np.zeros((224, 224, 3), np.uint8), dict(TV, channel_order="RGBA"))
    with pytest.raises(ValueError, match=r"expected a \(3, h, w\) array"):
        to_display(np.zeros((4, 5, 5), np.float32), TV)
    x = prepare(np.full((224, 224, 3), 0.5, np.float64), TV)                 # floats in [0, 1] accepted
    assert x.dtype == np.float32


def test_resize_shorter_is_the_frame_of_the_centre_crop(rgb):
    big = preprocess.resize_shorter(rgb, 256)                            # (40, 60) -> (256, 384)
    assert big.shape == (256, 384, 3) and big.dtype == np.uint8
    crop = preprocess.resize_crop(rgb, TV)
    top, left = (256 - 224) // 2, (384 - 224) // 2
    assert np.array_equal(big[top:top + 224, left:left + 224], crop)     # the crop is its centre
    assert np.array_equal(preprocess.resize_shorter(rgb, 40), rgb)       # already that size


def test_load_inputs(tmp_path, rgb):
    (tmp_path / "x").mkdir()
    a = _save(tmp_path / "x", "cat.png", Image.fromarray(rgb))
    b = _save(tmp_path, "cat.png", Image.fromarray(rgb).convert("L"))     # same stem, grey
    items = preprocess.load_inputs([a, b], TV)
    assert [i.name for i in items] == ["cat", "cat_"]                     # stems made unique
    small = ("small image (60x40 pixels, smaller than the network's 224x224 input) enlarged to 384x256: it holds "
             "less detail than the network expects")
    assert items[0].notes == [small] and items[1].notes == ["grey image converted to RGB", small]
    assert items[0].size == (40, 60)
    first = items[0]
    assert first.rgb.shape == (224, 224, 3) and first.full.shape == (256, 384, 3)
    assert first.x.dtype == np.float32 and np.array_equal(first.x, prepare(rgb, TV))
