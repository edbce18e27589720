"""``models.load(path)``: read any supported weights file and build the network it holds.

Two steps, each by content, never by file extension:

1. ``formats.read`` picks the reader (the project's HDF5, Keras .h5, PyTorch .pth). The project's
   file comes back named and typed (a WeightFile with an ``arch``); a foreign file comes back as
   unnamed layers tagged with the family that can name them (``ForeignLayers.family``).
2. The architecture's module builds the network: ``ARCHITECTURES`` maps a family to it, and
   :func:`family_of` finds the family of a WeightFile from its ``arch`` name (``"vgg16"`` -> vgg)
   or, for a custom net (the shipped ``shapes_vgg``), from its config (VGG: conv ``blocks``;
   ResNet: ``block`` and ``depths``). An architecture is one entry in ``ARCHITECTURES``; its module
   provides ``from_weightfile(wf, arch)``, ``from_foreign(layers, arch)`` and a test of a config.
"""
from minigrad import tiers

from . import formats, resnet, vgg
from .formats.common import ForeignLayers, WeightsError

#: family name -> the module that builds that architecture from a weights file.
ARCHITECTURES = {"vgg": vgg, "resnet": resnet}


def family_of(wf):
    """The ARCHITECTURES key for a WeightFile ('vgg', 'resnet'), or a WeightsError naming its arch."""
    for family in ARCHITECTURES:
        if wf.arch.lower().startswith(family):
            return family
    if vgg.is_vgg(wf):
        return "vgg"
    if resnet.is_resnet(wf):
        return "resnet"
    raise WeightsError(f"weights file {wf.path}: unknown architecture {wf.arch!r} "
                       f"(this program builds {', '.join(ARCHITECTURES)} networks)")


def standard_names():
    """The standard architectures' names, every family's: vgg11 ... vgg19, resnet18 ... resnet152."""
    return [name for module in ARCHITECTURES.values() for name in module.STANDARD]


def build(arch, num_classes=None, input_size=None, seed=None):
    """A new network of a standard architecture named ``arch`` ("vgg16", "resnet50", ...): random
    weights (He), training mode; ``num_classes`` and ``input_size`` override the standard ones."""
    for module in ARCHITECTURES.values():
        if str(arch).lower() in module.STANDARD:
            return module.build(arch, num_classes, input_size, seed=seed)
    raise ValueError(f"unknown architecture {arch!r}: use one of {', '.join(standard_names())}")


def read_weights(path, arch=None):
    """A named, checked WeightFile from any supported file (foreign layers are named here).

    ``arch``: if given, the file must hold that architecture (else WeightsError).
    """
    wf = formats.read(path)
    if isinstance(wf, ForeignLayers):
        return ARCHITECTURES[wf.family].from_foreign(wf, arch)
    if arch is not None and arch.lower() != wf.arch.lower():
        raise WeightsError(f"weights file {wf.path}: architecture {wf.arch!r}, expected {arch!r}")
    return wf


def load(path, device="cpu", arch=None):
    """The network a weights file holds, in eval mode, on ``device`` ('cpu' or 'gpu').

    ``model.meta`` (preprocessing), ``model.classes`` (one name per output) come from the file.
    """
    tiers.check_device(device)                                   # fail before reading a big file
    wf = read_weights(path, arch)
    model = ARCHITECTURES[family_of(wf)].from_weightfile(wf, arch)
    return model.to(device) if device != "cpu" else model


__all__ = ["load", "build", "standard_names", "read_weights", "family_of", "ARCHITECTURES"]
