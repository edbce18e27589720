"""Images in and out of a network: loading, resize and centre crop, channel order, mean and std.

A network's preprocessing is a dict ``meta`` (``model.meta``, stored in its weight file)::

    channel_order  "RGB" | "BGR"     order of the input channels
    scale          float             a [0, 1] image is multiplied by this (1.0 torchvision, 255.0 caffe)
    mean, std      3 floats          in the input's channel order: x = (scale * pixel - mean) / std
    resize         int or None       shorter side after a bilinear resize (None: resize straight to crop)
    crop           int or (h, w)     centre crop
    input_size     (H, W)

    rgb, notes = load_image("cat.jpg")       # (H, W, 3) uint8 RGB, ["EXIF orientation 6 applied"]
    x = prepare(rgb, model.meta)             # (3, H, W) float32, ready for the network
    back = to_display(x, model.meta)         # (H, W, 3) uint8: the crop the network saw

Resize and crop follow torchvision (PIL bilinear with antialiasing; long side ``int(size * long /
short)``; crop offsets ``round((H - h) / 2)``). Everything stays float32: mean and std are float32
arrays, so no float64 creeps in (under NumPy 2 a float64 array times a float32 one is float64).
"""
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 100_000_000


class ImageError(ValueError):
    """An image that cannot be read, or one this program refuses (too large)."""


def load_image(path, max_pixels=MAX_PIXELS):
    """Read any image Pillow reads as (H, W, 3) uint8 RGB, plus notes on what was converted.

    Grey, grey+alpha, RGBA (composited on white), palette, CMYK, 16-bit and 32-bit integer and float
    images are converted; EXIF orientation is applied; an animation gives its first frame.
    Raises ImageError for a missing, unreadable or too large (> ``max_pixels``) file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"image {path}: not found")
    if os.path.isdir(path):
        raise ImageError(f"image {path}: is a directory")
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(f"image {path}: {w}x{h} is {w * h / 1e6:.0f} megapixels; "
                                     f"refusing images over {max_pixels / 1e6:.0f}")
                if getattr(im, "n_frames", 1) > 1:
                    notes.append(f"{im.n_frames} frames: using the first")
                im.load()
                orientation = im.getexif().get(0x0112, 1)
                if orientation not in (None, 1):
                    im = ImageOps.exif_transpose(im)
                    notes.append(f"EXIF orientation {orientation} applied")
                rgb = _to_rgb(im, notes)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"image {path}: too large ({e})") from None
    except UnidentifiedImageError:
        raise ImageError(f"image {path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:                      # truncated, corrupt data
        raise ImageError(f"image {path}: cannot be decoded ({e})") from None
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageError(f"image {path}: empty image")
    return rgb, notes


def _to_rgb(im, notes):
    """A PIL image of any mode -> (H, W, 3) uint8 RGB, noting each conversion."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        if mode.startswith("I;16") or (mode == "I" and 0 <= lo and hi <= 65535 and hi > 255):
            a, how = a / 257.0, "16-bit grey scaled to 8 bits"
        elif mode == "F" and 0 <= lo and hi <= 1:
            a, how = a * 255.0, "float grey in [0, 1] scaled to 8 bits"
        elif 0 <= lo and hi <= 255:
            how = f"{mode}-mode grey taken as 8-bit"
        else:
            a, how = (a - lo) * (255.0 / max(hi - lo, 1e-12)), f"{mode}-mode grey stretched from [{lo:g}, {hi:g}]"
        if not np.isfinite(a).all():
            raise ValueError("image contains NaN or Inf")
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        notes.append(how + ", converted to RGB")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append(f"{mode} with transparency: composited on white, converted to RGB")
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8).copy()
    names = {"L": "grey", "1": "1-bit", "P": "palette", "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab",
             "HSV": "HSV"}
    notes.append(f"{names.get(mode, mode)} image converted to RGB")
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _check_rgb(rgb):
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        if not np.issubdtype(rgb.dtype, np.floating):
            raise ValueError(f"expected a uint8 (0..255) or float (0..1) image, got {rgb.dtype}")
        if not np.isfinite(rgb).all():
            raise ValueError("image contains NaN or Inf")
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return rgb


def resize_crop(rgb, meta):
    """(H, W, 3) uint8 -> (h, w, 3) uint8: shorter side to meta['resize'], then the centre crop."""
    rgb = _check_rgb(rgb)
    ch, cw = _pair(meta["crop"])
    im = Image.fromarray(rgb)
    h, w = rgb.shape[:2]
    size = meta.get("resize")
    if size:
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nh, nw = size, int(size * w / h)
    else:
        nh, nw = ch, cw
    if (nh, nw) != (h, w):
        im = im.resize((nw, nh), Image.BILINEAR)
    if nh < ch or nw < cw:
        raise ValueError(f"resized image {nh}x{nw} is smaller than the crop {ch}x{cw}")
    top, left = int(round((nh - ch) / 2.0)), int(round((nw - cw) / 2.0))
    return np.asarray(im, dtype=np.uint8)[top:top + ch, left:left + cw]


def resize_shorter(rgb, size):
    """(H, W, 3) uint8 -> shorter side ``size`` pixels, bilinear, with :func:`resize_crop`'s arithmetic
    (so its centre crop is the network's centre crop): the frame of the 10 crops."""
    h, w = rgb.shape[:2]
    nh, nw = (int(size * h / w), size) if w <= h else (size, int(size * w / h))
    if (nh, nw) == (h, w):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR), dtype=np.uint8)


def _stats(meta):
    mean = np.asarray(meta["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(meta["std"], dtype=np.float32).reshape(3, 1, 1)
    return mean, std, np.float32(meta["scale"])


def normalise(rgb, meta):
    """(h, w, 3) uint8 RGB -> (3, h, w) float32 in the model's input space (no resize)."""
    rgb = _check_rgb(rgb)
    mean, std, scale = _stats(meta)
    x = rgb.astype(np.float32).transpose(2, 0, 1) / np.float32(255)     # (3, h, w) in [0, 1]
    if meta["channel_order"].upper() == "BGR":
        x = x[::-1]
    elif meta["channel_order"].upper() != "RGB":
        raise ValueError(f"channel_order {meta['channel_order']!r}: expected 'RGB' or 'BGR'")
    return np.ascontiguousarray((x * scale - mean) / std, dtype=np.float32)


def prepare(rgb, meta):
    """(H, W, 3) uint8 RGB -> (3, h, w) float32: resize, centre crop, channel order, scale, mean/std."""
    return normalise(resize_crop(rgb, meta), meta)


def prepare_batch(images, meta):
    """A list of (H, W, 3) images -> (N, 3, h, w) float32."""
    return np.stack([prepare(im, meta) for im in images]).astype(np.float32, copy=False)


def to_display(x, meta, stretch=False):
    """Inverse of :func:`normalise`: (3, h, w) or (1, 3, h, w) float -> (h, w, 3) uint8 RGB.

    With ``stretch`` the de-normalised image is stretched to fill 0..255 (for class models,
    whose values need not lie in the pixel range); otherwise it is clipped.
    """
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a (3, h, w) array, got shape {x.shape}")
    mean, std, scale = _stats(meta)
    img = (x.astype(np.float32) * std + mean) / scale                    # (3, h, w), ~[0, 1]
    if meta["channel_order"].upper() == "BGR":
        img = img[::-1]
    if stretch:
        lo, hi = float(img.min()), float(img.max())
        img = (img - np.float32(lo)) / np.float32(max(hi - lo, 1e-12))
    img = np.clip(np.rint(img * np.float32(255)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img.transpose(1, 2, 0))
