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
    items = load_inputs(["a.jpg", "b.png"], model.meta)   # Input: name, rgb crop, x, full image, notes, size
    (h, w), top, left = crop_window((H, W), model.meta)    # where the crop lies in the resized image

Resize and crop follow torchvision (PIL bilinear with antialiasing; long side ``int(size * long /
short)``; crop offsets ``round((H - h) / 2)``). Everything stays float32: mean and std are float32
arrays, so no float64 creeps in (under NumPy 2 a float64 array times a float32 one is float64).
"""
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

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


def resize_shorter(rgb, size):
    """(H, W, 3) -> uint8 with the shorter side ``size`` pixels, bilinear; the long side becomes
    ``int(size * long / short)`` (torchvision's arithmetic, so :func:`resize_crop`'s centre crop is
    the centre of this image)."""
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    nh, nw = _shorter_to(h, w, size)
    if (nh, nw) == (h, w):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR), dtype=np.uint8)


def _shorter_to(h, w, size):
    return (int(size * h / w), size) if w <= h else (size, int(size * w / h))


def crop_window(shape, meta):
    """Where :func:`resize_crop` takes its crop from an image of ``shape`` (H, W): ``((h, w), top,
    left)``, the size of the resized image and the crop's offset in it. A box in the crop's pixels
    plus (left, top) is a box in the resized image, which is the original scaled by (H / h, W / w)."""
    ch, cw = _pair(meta["crop"])
    nh, nw = _shorter_to(shape[0], shape[1], meta["resize"]) if meta.get("resize") else (ch, cw)
    return (nh, nw), int(round((nh - ch) / 2.0)), int(round((nw - cw) / 2.0))


def upscale_note(shape, meta):
    """A note when an image of ``shape`` (H, W) is smaller than the network's input in either
    direction, and so enlarged (None otherwise): it holds less detail than the network expects."""
    ch, cw = _pair(meta["input_size"])
    h, w = shape
    if h >= ch and w >= cw:
        return None
    (nh, nw), _, _ = crop_window(shape, meta)
    kept = ch * cw / (nh * nw)
    cropped = f", of which the centre crop keeps {kept:.1%}" if kept < 0.5 else ""
    return (f"small image ({w}x{h} pixels, smaller than the network's {cw}x{ch} input) enlarged to "
            f"{nw}x{nh}{cropped}: it holds less detail than the network expects")


def resize_crop(rgb, meta):
    """(H, W, 3) uint8 -> (h, w, 3) uint8: shorter side to meta['resize'], then the centre crop."""
    rgb = _check_rgb(rgb)
    ch, cw = _pair(meta["crop"])
    if meta.get("resize"):
        rgb = resize_shorter(rgb, meta["resize"])
    elif rgb.shape[:2] != (ch, cw):                                       # straight to the crop size
        rgb = np.asarray(Image.fromarray(rgb).resize((cw, ch), Image.BILINEAR), dtype=np.uint8)
    nh, nw = rgb.shape[:2]
    if nh < ch or nw < cw:
        raise ValueError(f"resized image {nh}x{nw} is smaller than the crop {ch}x{cw}")
    top, left = int(round((nh - ch) / 2.0)), int(round((nw - cw) / 2.0))
    return rgb[top:top + ch, left:left + cw]


def input_stats(meta):
    """The model's input statistics: (mean, std, scale), mean and std float32 (3, 1, 1) in the model's
    channel order (they broadcast over a (3, h, w) image), scale a float32 scalar."""
    mean = np.asarray(meta["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(meta["std"], dtype=np.float32).reshape(3, 1, 1)
    return mean, std, np.float32(meta["scale"])


def normalise(rgb, meta):
    """(h, w, 3) uint8 RGB -> (3, h, w) float32 in the model's input space (no resize)."""
    rgb = _check_rgb(rgb)
    mean, std, scale = input_stats(meta)
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
    mean, std, scale = input_stats(meta)
    img = (x.astype(np.float32) * std + mean) / scale                    # (3, h, w), ~[0, 1]
    if meta["channel_order"].upper() == "BGR":
        img = img[::-1]
    if stretch:
        lo, hi = float(img.min()), float(img.max())
        img = (img - np.float32(lo)) / np.float32(max(hi - lo, 1e-12))
    img = np.clip(np.rint(img * np.float32(255)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img.transpose(1, 2, 0))


# ------------------------------------------------------------------------------------------------
# files in, network inputs out
# ------------------------------------------------------------------------------------------------
@dataclass
class Input:
    """One image file, ready for a network.

    name : str                   a file stem, unique among the images loaded together
    rgb : (h, w, 3) uint8        the centre crop the network sees
    x : (3, h, w) float32        that crop preprocessed
    full : (H, W, 3) uint8       the image resized as the weight file says, not cropped
                                 (the frame of the 10-crop average)
    notes : list of str          what loading converted (grey to RGB, EXIF rotation, upscaling, ...)
    size : (H, W)                the image's own size, as loaded (boxes in the crop's pixels map back
                                 to it with :func:`crop_window`)
    """
    name: str
    rgb: np.ndarray
    x: np.ndarray
    full: np.ndarray
    notes: list = field(default_factory=list)
    size: tuple = None


def load_inputs(paths, meta):
    """An :class:`Input` per path, for a network with preprocessing ``meta`` (``model.meta``)."""
    inputs, used = [], set()
    crop_h, crop_w = _pair(meta["input_size"])
    for path in paths:
        rgb, notes = load_image(path)
        full = resize_shorter(rgb, max(int(meta.get("resize") or 0), crop_h, crop_w))
        crop = resize_crop(rgb, meta)
        note = upscale_note(rgb.shape[:2], meta)
        if note:
            notes.append(note)
        name = Path(path).stem or "image"
        while name in used:                                  # two images with one stem
            name += "_"
        used.add(name)
        inputs.append(Input(name, crop, normalise(crop, meta), full, notes, rgb.shape[:2]))
    return inputs
