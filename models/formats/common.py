"""What every weight-file reader shares: the error, the two results a reader returns, file checks.

A reader returns either

* a :class:`WeightFile`: a network named and checked layer by layer (the project's own HDF5), or
* a :class:`ForeignLayers`: another library's weights already in the engine's layout (conv
  ``(out, in, kh, kw)``, linear ``(out, in)``) but not yet named (or named in the other library's
  terms); the architecture module of its ``family`` names and checks them (``vgg.from_foreign``,
  ``resnet.from_foreign``), which makes a WeightFile.

A layer is a small dict of named arrays, as in the file: ``{"weight": w, "bias": b}`` for a VGG
convolution, ``{"weight": w}`` for a convolution without bias, and for a batch normalisation
``{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}``.
"""
import math
import os
from dataclasses import dataclass, field

import h5py
import numpy as np

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class WeightsError(ValueError):
    """A weights file that is missing, unreadable, of another architecture or wrongly shaped."""


@dataclass
class WeightFile:
    """The contents of a weights file.

    ``layers`` maps layer name -> {dataset name: array} (float32 NumPy arrays; a batch norm's
    ``num_batches_tracked`` is an int64 scalar array), in network order.
    ``meta`` holds the preprocessing: channel_order, scale, mean, std, resize, crop, input_size.
    """
    arch: str
    config: dict
    meta: dict
    classes: list
    layers: dict
    wnids: list = None
    path: str = ""
    attrs: dict = field(default_factory=dict)

    @property
    def num_classes(self):
        return self.config.get("num_classes", len(self.classes))


@dataclass
class ForeignLayers:
    """Weights from another library's file, in the engine's layout, in network order, unnamed.

    family : str     the architecture module that names them ("vgg", "resnet")
    blocks : list    VGG: per block, a list of conv (weight (out, in, kh, kw), bias); one block when
                     the file does not say where blocks end
    fcs : list       VGG: fully connected (weight (out, in), bias); empty for a net without its classifier
    meta : dict      channel_order, scale, mean, std
    layers : dict    ResNet: the file's own layer names -> {dataset name: array}, as torchvision
                     names them (``layer1.0.bn1`` -> weight, bias, running_mean, running_var, ...)
    """
    family: str
    blocks: list
    fcs: list
    meta: dict
    path: str = ""
    layers: dict = field(default_factory=dict)


def datasets(layer):
    """A layer as {dataset name: array (or shape)}; a (weight, bias) pair is short for
    ``{"weight": weight, "bias": bias}`` (how VGG layers are often written)."""
    if isinstance(layer, dict):
        return layer
    weight, bias = layer
    return {"weight": weight, "bias": bias}


def fail(path, message):
    raise WeightsError(f"weights file {path}: {message}")


def shape_text(shape):
    """(64, 3, 3, 3) -> '(64, 3, 3, 3)'; (5,) -> '(5,)' (NumPy ints printed as plain ints)."""
    return "(" + ", ".join(str(int(s)) for s in shape) + (",)" if len(shape) == 1 else ")")


def text(value):
    """An HDF5 string attribute as str (h5py gives bytes or str depending on how it was stored)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return str(value)


def texts(value):
    return [text(v) for v in np.asarray(value).ravel()]


def check_exists(path):
    """WeightsError unless ``path`` is an existing file."""
    if not os.path.exists(path):
        fail(path, "not found")
    if os.path.isdir(path):
        fail(path, "is a directory")


def is_hdf5(path):
    """True when the file starts with the HDF5 signature (no h5py call, no exception)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def open_hdf5(path):
    """Open an HDF5 file for reading; turn every failure into a WeightsError."""
    check_exists(path)
    if not is_hdf5(path):
        fail(path, "not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        fail(path, f"cannot be read (truncated or corrupt?): {e}")


def square_side(path, n_in, channels):
    """Side of the square feature map that a first fc layer's ``n_in`` inputs flatten."""
    side = math.isqrt(n_in // channels) if n_in % channels == 0 else 0
    if side == 0 or side * side * channels != n_in:
        fail(path, f"first fully connected layer has {n_in} inputs, which is not "
                   f"{channels} channels x a square feature map")
    return side
