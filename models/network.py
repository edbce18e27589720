"""What the architecture modules (``vgg.py``, ``resnet.py``) share, so that saliency code and
scripts can treat every network alike.

A network here is an ``nn.Module`` with a table of named layers, ``model.layer_names``, and these
attributes: ``arch`` (a name), ``config`` (its dataclass: ``num_classes``, ``input_size``, ...),
``meta`` (preprocessing), ``classes`` (one name per output), ``wnids``, ``weight_layers`` (the names
of its conv and fc layers) and ``layer(name)`` (the module of a table name). Saliency code and
scripts use only this surface, never an architecture's own attributes. ``forward(x,
until=NAME)`` stops at a layer and returns its activation; ``until=[names]`` returns a dict.

This module holds the parts of that surface that are written once: choosing the layers ``until``
asks for, ImageNet's preprocessing, the network's logits and top-1 class of a batch, loading any file
through an architecture module, saving, and turning a model's state dict into the weight file's
layers and back.
"""
import math
from collections import OrderedDict
from dataclasses import asdict

import numpy as np

from minigrad import backend, nn, tiers
from minigrad.tensor import Tensor, no_grad

from . import formats
from .formats import hdf5
from .formats.common import ForeignLayers, WeightsError

#: torchvision's ImageNet preprocessing, the default for newly built nets.
IMAGENET_RGB = {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225]}


class Config:
    """What the architectures' config dataclasses (VGGConfig, ResNetConfig) share: the dict that a
    weight file stores as JSON, and back."""

    def to_dict(self):
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d, name=None):
        keys = [k for k in cls.__dataclass_fields__ if k != "name"]
        return cls(name=name or d.get("name", "custom"), **{k: d[k] for k in keys if k in d})


def default_meta(config):
    """ImageNet-style preprocessing scaled to the net's input size (resize = crop * 256/224)."""
    h, w = config.input_size
    crop = h if h == w else (h, w)
    return dict(IMAGENET_RGB, resize=int(round(min(h, w) * 256 / 224)), crop=crop,
                input_size=(h, w))


def requested(model, until):
    """The layer names ``until`` asks for: [] for None, [until] for a name, the list for a list.

    A name that is not in ``model.layer_names`` is a ValueError that shows the table.
    """
    wanted = [until] if isinstance(until, str) else list(until or [])
    unknown = [n for n in wanted if n not in model.layer_names]
    if unknown:
        names = list(model.layer_names)
        if len(names) > 40:                                      # ResNet-152's table has 500 names
            names = names[:12] + ["..."] + names[-4:] + [f"(model.layer_names lists all {len(model.layer_names)})"]
        raise ValueError(f"unknown layer {unknown[0]!r}: this {model.arch} has {', '.join(names)}")
    return wanted


def answer(until, found, last):
    """What ``forward`` returns: ``found[until]`` for a name, the dict ``found`` for a list, ``last`` for None."""
    if isinstance(until, str):
        return found[until]
    return found if until is not None else last


def has_classifier(model):
    """True when the network ends in class scores (a VGG converted without its top has none)."""
    return model.config.num_classes > 0


def logits(model, batch, chunk=None):
    """The class scores (N, classes) of ``batch`` (N, 3, H, W) in the model's input space, as a NumPy
    array on the host: one forward pass without a graph, on the model's device (``chunk`` images at a
    time when given)."""
    chunk = chunk or len(batch)
    with no_grad():
        parts = [backend.to_numpy(model(Tensor(backend.to_device(batch[i:i + chunk], model.device))).data)
                 for i in range(0, len(batch), chunk)]
    return np.concatenate(parts)


def top1(model, batch, chunk=None):
    """The network's top-1 class of each image of ``batch`` (N, 3, H, W): NumPy ints (N,)."""
    return logits(model, batch, chunk).argmax(axis=1)


def check_arch(wf, arch):
    """WeightsError unless ``arch`` is None or the file's architecture."""
    if arch is not None and arch.lower() != wf.arch.lower():
        raise WeightsError(f"weights file {wf.path}: architecture {wf.arch!r}, expected {arch!r}")


def class_names(wf, num_classes):
    """The file's class names, or ``class_0 ...`` when it has none; WeightsError if the count is wrong."""
    classes = list(wf.classes) or [f"class_{i}" for i in range(num_classes)]
    if len(classes) != num_classes:
        raise WeightsError(f"weights file {wf.path}: {len(classes)} class names for {num_classes} outputs")
    return classes


def file_layers(model):
    """{layer: {dataset: NumPy array}} from ``model.state_dict()`` (``layer1.0.bn1.running_var`` ->
    layer ``layer1.0.bn1``, dataset ``running_var``), in network order: the weight file's layers."""
    layers = OrderedDict()
    for key, array in model.state_dict().items():
        layer, dataset = key.rsplit(".", 1)
        layers.setdefault(layer, {})[dataset] = backend.to_numpy(array)
    return layers


def save(model, path):
    """Write ``model`` (weights, buffers such as BN statistics, config, meta, classes) to the project's
    HDF5 format, atomically."""
    meta = dict(model.meta, input_size=tuple(model.config.input_size))
    hdf5.write(path, model.arch, model.config.to_dict(), file_layers(model), meta, model.classes, model.wnids)


def state_of(layers):
    """The inverse of :func:`file_layers`: {"layer.dataset": array} for ``load_state_dict``."""
    return {f"{layer}.{key}": array for layer, group in layers.items() for key, array in group.items()}


def built(wf, network_class, config, expected):
    """``network_class(config)`` holding the weights of ``wf``, every layer checked against
    ``expected`` ({layer: {dataset: shape}}), with the file's meta and classes, in eval mode."""
    hdf5.check_layers(wf.path, wf.layers, expected)
    classes = class_names(wf, config.num_classes)
    with nn.no_init():                                           # the file's weights replace them
        model = network_class(config)
    model.load_state_dict(state_of(wf.layers))
    model.meta = dict(wf.meta, input_size=tuple(config.input_size))
    model.classes, model.wnids = classes, wf.wnids
    return model.eval()


def load(module, path, device="cpu", arch=None):
    """Load a network of ``module``'s family (vgg, resnet) from a weights file, in eval mode, on ``device``.

    ``module`` names its family (``models.vgg`` -> "vgg") and tells its files apart (``is_vgg``).

    ``path``: the project's HDF5, or a foreign file (Keras .h5, torchvision .pth) converted on the fly.
    ``arch``: if given, the file must hold that architecture (else WeightsError).
    """
    tiers.check_device(device)                                   # fail before reading a big file
    family = module.__name__.rsplit(".", 1)[-1]
    wf = formats.read(path)
    if isinstance(wf, ForeignLayers):
        held = wf.family
        wf = module.from_foreign(wf, arch) if held == family else None
    else:
        held = family if getattr(module, f"is_{family}")(wf) else wf.arch
    if held != family:
        raise WeightsError(f"weights file {path}: holds a {held} network, which {family}.load does not "
                           "build (models.load builds any network)")
    model = module.from_weightfile(wf, arch)
    return model.to(device) if device != "cpu" else model


def num_parameters(model):
    return int(sum(math.prod(p.shape) for p in model.parameters()))
