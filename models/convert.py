"""Keras .h5 and torchvision .pth VGG weights -> the project's HDF5 (see models/hdf5.py).

Keras (``vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5``, vgg19 likewise): the root attribute
``layer_names`` lists the layers in order (weightless ones, like ``block1_pool``, too); each layer's
group lists its datasets in the attribute ``weight_names`` (``block1_conv1_W_1:0`` in the original
files, ``kernel:0`` or ``kernel`` later: read, never guessed). Layouts::

    conv kernel (kh, kw, in, out)  -> transpose(3, 2, 0, 1)                   -> (out, in, kh, kw)
    dense (in, out)                -> .T                                      -> (out, in)
    first dense: its inputs are Keras' flatten of (h, w, c), ours of (c, h, w):
        K.reshape(h, w, c, out).transpose(3, 2, 0, 1).reshape(out, c * h * w)

Keras' VGG expects 'caffe' preprocessing: BGR, 0..255, minus the BGR mean (103.939, 116.779, 123.68).

torchvision (``vgg16-397923af.pth``): ``features.{i}.weight|bias`` for the convolutions (index gaps
of 2 inside a block -- conv, relu -- and 3 across a pool), ``classifier.{0,3,6}`` for fc6..fc8,
already in our layout; preprocessing RGB, /255, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).

The architecture is inferred from the layers (count and widths); ``arch=`` makes it a check.
"""
import math
import os
import re

import h5py
import numpy as np

from . import hdf5, imagenet, torchfile
from .hdf5 import WeightFile, WeightsError, _texts
from .vgg import STANDARD, VGGConfig, layer_shapes

CAFFE_BGR = {"channel_order": "BGR", "scale": 255.0, "mean": [103.939, 116.779, 123.68],
             "std": [1.0, 1.0, 1.0]}
TORCHVISION_RGB = {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406],
                   "std": [0.229, 0.224, 0.225]}


def _fail(path, message):
    raise WeightsError(f"weights file {path}: {message}")


# ------------------------------------------------------------------------------------------------
# from (blocks of conv weights, fc weights) to a WeightFile
# ------------------------------------------------------------------------------------------------
def describe(blocks):
    """'13 conv layers in blocks 2-2-3-3-3' for messages."""
    return f"{sum(map(len, blocks))} conv layers in blocks {'-'.join(str(len(b)) for b in blocks)}"


def _feature_side(path, n_in, channels):
    """Side of the square feature map that the first fc layer's ``n_in`` inputs flatten."""
    side = math.isqrt(n_in // channels) if n_in % channels == 0 else 0
    if side == 0 or side * side * channels != n_in:
        _fail(path, f"first fully connected layer has {n_in} inputs, which is not "
                    f"{channels} channels x a square feature map")
    return side


def assemble(path, blocks, fcs, meta, arch=None):
    """Name, check and package converted layers.

    Parameters
    ----------
    blocks : list of lists of (weight (out, in, kh, kw), bias)
    fcs : list of (weight (out, in), bias); empty for a net without its classifier
    meta : dict  channel_order, scale, mean, std (resize/crop/input_size are filled in here)
    arch : str or None  the architecture the caller expects
    """
    widths = [[w.shape[0] for w, _ in block] for block in blocks]
    fcs = list(fcs)
    if fcs:
        input_size = _feature_side(path, fcs[0][0].shape[1], widths[-1][-1]) * 2 ** len(blocks)
    else:
        input_size = 224
    fc = [w.shape[0] for w, _ in fcs[:-1]] if fcs else None
    num_classes = fcs[-1][0].shape[0] if fcs else 0
    name = next((n for n, std in STANDARD.items() if std == widths), None)
    if name is None or input_size != 224 or fc not in (None, [4096, 4096]):
        name = "custom"
    if arch is not None and arch.lower() != name:
        _fail(path, f"holds a {name} net ({describe(blocks)}), not {arch}")
    config = VGGConfig(name, widths, fc, num_classes or 1000, input_size)
    layers = dict(zip(layer_shapes(config),
                      [(np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32))
                       for w, b in [wb for block in blocks for wb in block] + fcs]))
    hdf5.check_layers(path, layers, layer_shapes(config))
    resize = int(round(input_size * 256 / 224))
    meta = dict(meta, resize=resize, crop=input_size, input_size=(input_size, input_size))
    if num_classes == 1000:
        classes, wnids = imagenet.names(), imagenet.wnids()
    else:
        classes, wnids = [f"class_{i}" for i in range(num_classes)], None
    return WeightFile(arch=name, config=config.to_dict(), meta=meta, classes=classes,
                      layers=layers, wnids=wnids, path=path)


# ------------------------------------------------------------------------------------------------
# Keras
# ------------------------------------------------------------------------------------------------
def _keras_root(f):
    if "layer_names" in f.attrs:
        return f
    if "model_weights" in f and "layer_names" in f["model_weights"].attrs:   # a whole saved model
        return f["model_weights"]
    return None


def is_keras(path):
    """True for an HDF5 file with Keras' ``layer_names`` (and not one of ours)."""
    if not hdf5.is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return "format" not in f.attrs and _keras_root(f) is not None
    except OSError:
        return False


def read_keras(path, arch=None):
    """A WeightFile from a Keras VGG weights file (with or without its classifier)."""
    with hdf5.open_hdf5(path) as f:
        root = _keras_root(f)
        if root is None:
            _fail(path, "not a Keras weights file (no 'layer_names' attribute)")
        convs, dense, blocks, by_name = [], [], [], {}
        for lname in _texts(root.attrs["layer_names"]):
            if lname not in root:
                _fail(path, f"layer {lname} is listed in layer_names but missing")
            g = root[lname]
            wnames = _texts(g.attrs.get("weight_names", []))
            if not wnames:
                if "pool" in lname.lower() and convs and not dense:     # a block ends here
                    blocks.append(convs)
                    convs = []
                continue
            try:
                arrays = [g[w][()] for w in wnames]
            except KeyError as e:
                _fail(path, f"layer {lname}: dataset {e} listed in weight_names is missing")
            except OSError as e:
                _fail(path, f"layer {lname} cannot be read (truncated or corrupt?): {e}")
            kernels = [a for a in arrays if a.ndim in (2, 4)]
            biases = [a for a in arrays if a.ndim == 1]
            if len(arrays) != 2 or len(kernels) != 1 or len(biases) != 1:
                _fail(path, f"layer {lname} has weights of shapes {[a.shape for a in arrays]}; "
                            "expected a kernel and a bias (batch norm is not supported)")
            k, b = kernels[0], biases[0]
            if k.ndim == 4:
                if dense:
                    _fail(path, f"convolution {lname} after a dense layer")
                if k.shape[:2] != (3, 3):
                    _fail(path, f"layer {lname} kernel has shape {k.shape}, expected (3, 3, in, out) "
                                "(channels_last / 'tf' ordering; 'th' files are not supported)")
                convs.append((k.transpose(3, 2, 0, 1), b))               # (out, in, kh, kw)
                by_name[lname] = len(convs)
            else:
                dense.append((k, b))                                     # (in, out), fixed below
        if convs:
            blocks.append(convs)
    if not blocks:
        _fail(path, "no convolution layers found")
    if len(blocks) == 1:                                                 # no pool layers listed
        n = len(blocks[0])
        std = next((cfg for cfg in STANDARD.values() if sum(map(len, cfg)) == n), None)
        if std is None:
            _fail(path, f"cannot tell the blocks of its {n} conv layers apart (no pooling layers listed)")
        it = iter(blocks[0])
        blocks = [[next(it) for _ in blk] for blk in std]
    if dense:                                            # (in, out) -> (out, in), one copy each
        c, (k, b) = blocks[-1][-1][0].shape[0], dense[0]
        side, out = _feature_side(path, k.shape[0], c), k.shape[1]
        dense[0] = (k.reshape(side, side, c, out).transpose(3, 2, 0, 1).reshape(out, -1), b)
        dense[1:] = [(np.ascontiguousarray(k.T), b) for k, b in dense[1:]]
    return assemble(path, blocks, dense, CAFFE_BGR, arch)


# ------------------------------------------------------------------------------------------------
# torchvision
# ------------------------------------------------------------------------------------------------
_TV_KEY = re.compile(r"^(features|classifier)\.(\d+)\.(weight|bias)$")


def from_torchvision(path, sd, arch=None):
    """A WeightFile from a torchvision VGG state dict {key: ndarray}."""
    layers = {"features": {}, "classifier": {}}
    for key, value in sd.items():
        m = _TV_KEY.match(key)
        if not m:
            if "running_mean" in key or "running_var" in key:
                _fail(path, "a batch-norm VGG (vgg*_bn): not supported")
            _fail(path, f"unexpected key {key!r}: not a torchvision VGG state dict")
        part, index, kind = m.group(1), int(m.group(2)), m.group(3)
        layers[part].setdefault(index, {})[kind] = value
    for part in layers:
        for index, wb in layers[part].items():
            if set(wb) != {"weight", "bias"}:
                _fail(path, f"{part}.{index} has {sorted(wb)}; expected weight and bias")
    feats = sorted(layers["features"].items())
    if not feats or feats[0][0] != 0:
        _fail(path, "no features.0 convolution: not a torchvision VGG state dict")
    blocks, prev = [[]], None
    for index, wb in feats:
        if wb["weight"].ndim != 4:
            _fail(path, f"features.{index}.weight has shape {wb['weight'].shape}, expected 4-D")
        if prev is not None and index - prev not in (2, 3):
            _fail(path, f"unexpected gap features.{prev} -> features.{index}")
        if prev is not None and index - prev == 3:                      # conv, relu, pool, conv
            blocks.append([])
        blocks[-1].append((wb["weight"], wb["bias"]))
        prev = index
    fcs = [(wb["weight"], wb["bias"]) for _, wb in sorted(layers["classifier"].items())]
    for w, _ in fcs:
        if w.ndim != 2:
            _fail(path, f"classifier weight has shape {w.shape}, expected 2-D")
    return assemble(path, blocks, fcs, TORCHVISION_RGB, arch)


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------
def read_source(path, arch=None):
    """A WeightFile from any supported file: Keras .h5, torchvision .pth, or the project's .h5."""
    path = str(path)
    if not os.path.exists(path):
        _fail(path, "not found")
    if os.path.isdir(path):
        _fail(path, "is a directory")
    if hdf5.is_hdf5(path):
        if is_keras(path):
            return read_keras(path, arch)
        wf = hdf5.read(path)                  # ours (or an error saying what the HDF5 file lacks)
        if arch is not None and arch.lower() != wf.arch.lower():
            _fail(path, f"architecture {wf.arch!r}, expected {arch!r}")
        return wf
    return from_torchvision(path, torchfile.read_state_dict(path), arch)


def convert(src, dst, arch=None):
    """Convert ``src`` to the project's HDF5 at ``dst`` (written atomically); returns the WeightFile."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise WeightsError(f"weights file {src}: the output would overwrite the input")
    wf = read_source(src, arch)
    hdf5.write(dst, wf.arch, wf.config, wf.layers, wf.meta, wf.classes, wf.wnids)
    return wf
