"""The project's weight file: one HDF5 file per network, versioned, self-describing.

Layout (documented for users in ``weights/README.md``)::

    /                          root attributes
        format         = "deepinside-weights"
        format_version = 1 when every layer is a weight and a bias (VGG), 2 when some layer holds
                         other datasets (ResNet: batch norm, convolutions without bias); a reader
                         refuses versions newer than it knows, so an old one names the problem
        arch           = "vgg16" | "vgg11" | "vgg13" | "vgg19" | "resnet18" | "resnet34" | "resnet50"
                         | "resnet101" | "resnet152" | any name of a custom config
        config         = JSON, VGG: {"blocks": [[64, 64], ...], "fc": [4096, 4096] or null,
                                     "num_classes": 1000, "input_size": [224, 224], "in_channels": 3}
                              ResNet: {"block": "basic" | "bottleneck", "depths": [3, 4, 6, 3],
                                     "widths": [64, 128, 256, 512], "stem_width": 64, "stem_kernel": 7,
                                     "stem_stride": 2, "maxpool": true, "num_classes": 1000,
                                     "input_size": [224, 224], "in_channels": 3}
        num_classes    = int
        input_size     = (H, W)
        channel_order  = "RGB" | "BGR"     order of the channels the network expects
        scale          = float             pixel range: a [0, 1] image is multiplied by this
        mean, std      = 3 floats each     in the channel order of the model input
        resize         = int               shorter side before the centre crop
        crop           = int               side of the centre crop
        class_names    = list of str       one per output
        class_wnids    = list of str       optional (ImageNet WordNet ids)
        layers         = list of str       layer names in network order
    VGG:
    /conv1_1/weight            (out, in, kh, kw) float32
    /conv1_1/bias              (out,)
    ...
    /fc8/weight                (out, in) float32; fc6's inputs are flattened in (c, h, w) order
    /fc8/bias                  (out,)
    ResNet (torchvision's names):
    /conv1/weight              (64, 3, 7, 7) float32; convolutions have no bias
    /bn1/weight, /bn1/bias     (C,) float32      the affine: gamma, beta
    /bn1/running_mean          (C,) float32      the statistics used in eval mode:
    /bn1/running_var           (C,) float32      y = (x - mean) / sqrt(var + 1e-5) * gamma + beta
    /bn1/num_batches_tracked   () int64          batches seen in training (0 if the source had none)
    /layer1.0.conv1/weight ... /layer1.0.bn3/...   each block's layers
    /layer2.0.downsample.0/weight, /layer2.0.downsample.1/...   the shortcut's 1x1 conv and its BN
    /fc/weight, /fc/bias       (num_classes, C) and (num_classes,)

Every problem with a file is a :class:`WeightsError` (a ValueError) whose message starts with
``weights file PATH:`` and says what is wrong, e.g.
``weights file w.h5: layer conv1_2 has shape (64, 3, 3, 3), expected (64, 64, 3, 3)``.
"""
import json
import os

import h5py
import numpy as np

from ..files import atomic_path
from .common import WeightFile, WeightsError, datasets, fail, open_hdf5, shape_text, text, texts

FORMAT = "deepinside-weights"
FORMAT_VERSION = 2                                  #: the newest version this program reads and writes


def _array(value):
    """A dataset's array: floats as float32, integers (num_batches_tracked) as int64."""
    value = np.asarray(value)
    return value.astype(np.int64 if value.dtype.kind in "iub" else np.float32, copy=False)


def write(path, arch, config, layers, meta, classes, wnids=None):
    """Write a weights file atomically (to a temporary name in the same folder, then rename).

    Parameters
    ----------
    arch : str                 architecture name ("vgg16", or the name of a custom config)
    config : dict              the architecture's configuration (see the module docstring)
    layers : dict              name -> {dataset name: array} (or a (weight, bias) pair), in network order
    meta : dict                channel_order, scale, mean, std, resize, crop, input_size
    classes : list of str      one name per output
    wnids : list of str or None
    """
    str_type = h5py.string_dtype("utf-8")
    layers = {name: datasets(layer) for name, layer in layers.items()}
    only_weight_bias = all(set(layer) == {"weight", "bias"} for layer in layers.values())
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            a = f.attrs
            a["format"] = FORMAT
            a["format_version"] = 1 if only_weight_bias else FORMAT_VERSION   # version-1 readers read VGG files
            a["arch"] = arch
            a["config"] = json.dumps(config)
            a["num_classes"] = int(config.get("num_classes") or 0)
            a["input_size"] = np.asarray(meta["input_size"], dtype=np.int64)
            a["channel_order"] = meta["channel_order"]
            a["scale"] = float(meta["scale"])
            a["mean"] = np.asarray(meta["mean"], dtype=np.float64)
            a["std"] = np.asarray(meta["std"], dtype=np.float64)
            a["resize"] = int(meta["resize"] or 0)
            a["crop"] = np.asarray(meta["crop"], dtype=np.int64)
            a.create("class_names", np.array(list(classes), dtype=object), dtype=str_type)
            if wnids:
                a.create("class_wnids", np.array(list(wnids), dtype=object), dtype=str_type)
            a.create("layers", np.array(list(layers), dtype=object), dtype=str_type)
            for name, layer in layers.items():
                g = f.create_group(name)
                for key, value in layer.items():
                    g.create_dataset(key, data=_array(value))


def read(path):
    """Read a whole weights file into a :class:`WeightFile` (arrays as float32 NumPy, counters int64)."""
    path = os.fspath(path)
    with open_hdf5(path) as f:
        a = f.attrs
        if "format" not in a:
            hint = (" (it looks like a Keras file: convert it with scripts/convert_weights.py)"
                    if "layer_names" in a or "model_weights" in f else "")
            fail(path, f"not a deepinside weights file: no 'format' attribute{hint}")
        if text(a["format"]) != FORMAT:
            fail(path, f"format is {text(a['format'])!r}, expected {FORMAT!r}")
        version = int(a.get("format_version", 0))
        if version > FORMAT_VERSION:
            fail(path, f"format_version {version} is newer than this program reads ({FORMAT_VERSION})")
        try:
            arch = text(a["arch"])
            config = json.loads(text(a["config"])) if "config" in a else None
            if config is not None and not (isinstance(config, dict) and isinstance(config.get("blocks", []), list)
                                           and all(isinstance(b, list) for b in config.get("blocks", []))
                                           and isinstance(config.get("fc", []), (list, type(None)))):
                fail(path, "attribute 'config' is not a network configuration (a dict; a VGG's "
                           "with a list of blocks)")
            meta = {
                "channel_order": text(a["channel_order"]),
                "scale": float(a["scale"]),
                "mean": [float(v) for v in a["mean"]],
                "std": [float(v) for v in a["std"]],
                "resize": int(a["resize"]) or None,
                "crop": _crop(a["crop"]),
                "input_size": tuple(int(v) for v in a["input_size"]),
            }
            classes = texts(a["class_names"])
            wnids = texts(a["class_wnids"]) if "class_wnids" in a else None
            order = texts(a["layers"]) if "layers" in a else list(f.keys())
        except KeyError as e:
            fail(path, f"missing root attribute {e.args[0]!r}")
        except (ValueError, TypeError) as e:
            fail(path, f"bad root attribute: {e}")
        layers = {}
        for name in order:
            if name not in f:
                fail(path, f"layer {name} is listed but missing")
            g = f[name]
            if not isinstance(g, h5py.Group) or "weight" not in g:
                fail(path, f"layer {name} has no 'weight' dataset")
            try:
                layers[name] = {key: _array(g[key][()]) for key in g}
            except (OSError, TypeError) as e:
                fail(path, f"layer {name} cannot be read (truncated or corrupt?): {e}")
    if config is None:
        config = {"num_classes": len(classes)}
    return WeightFile(arch=arch, config=config, meta=meta, classes=classes, layers=layers,
                      wnids=wnids, path=path)


def _crop(value):
    v = np.asarray(value).ravel()
    return int(v[0]) if v.size == 1 else tuple(int(x) for x in v)


def check_layers(path, layers, expected):
    """Check a dict of layers against the expected shapes; raise WeightsError naming the culprit.

    Parameters
    ----------
    layers : dict    name -> {dataset name: array} found in the file ((weight, bias) pairs too)
    expected : dict  name -> {dataset name: shape} the network needs, in network order (or a
                     (weight shape, bias shape) pair)

    The messages name the layer, the dataset, and both shapes: ``layer conv1_2 has shape (64, 3,
    3, 3), expected (64, 64, 3, 3)`` (the weight), ``layer bn1 running_var has shape (32,),
    expected (64,)``, ``layer bn1 has no running_var (expected shape (64,))``.
    """
    for name, shapes in expected.items():
        shapes = datasets(shapes)
        if name not in layers:
            fail(path, f"layer {name} is missing (expected weight {shape_text(shapes['weight'])})")
        found = datasets(layers[name])
        for key, shape in shapes.items():
            if key not in found:
                fail(path, f"layer {name} has no {key} (expected shape {shape_text(shape)})")
            arr = found[key]
            if tuple(arr.shape) != tuple(shape):
                label = "" if key == "weight" else f" {key}"
                fail(path, f"layer {name}{label} has shape {shape_text(arr.shape)}, expected {shape_text(shape)}")
            if not np.isfinite(arr).all():
                fail(path, f"layer {name} {key} contains NaN or Inf")
        unexpected = [key for key in found if key not in shapes]
        if unexpected:
            fail(path, f"layer {name} has {', '.join(unexpected)}, which this architecture does not use")
    extra = [n for n in layers if n not in expected]
    if extra:
        fail(path, f"unexpected layer(s) {', '.join(extra)} for this architecture")


__all__ = ["FORMAT", "FORMAT_VERSION", "read", "write", "check_layers", "WeightFile", "WeightsError"]
