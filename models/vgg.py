"""VGG networks (Simonyan & Zisserman, 2014) as an ordered table of named layers.

Configurations A, B, D and E of the VGG paper are ``vgg11``, ``vgg13``, ``vgg16`` and ``vgg19``;
any other stack of 3x3 convolutions is a custom :class:`VGGConfig` (the small demo net is one)::

    block b, conv i:  conv{b}_{i}  (3x3, padding 1)  ->  relu{b}_{i}
    end of block b:   pool{b}      (2x2 max, stride 2)
    classifier:       flatten -> fc{n} -> relu{n} -> drop{n} -> ... -> fc{last}   (logits)

The fully connected layers are numbered on from the blocks, as in the paper: after five blocks,
``fc6, fc7, fc8``; after three blocks, ``fc4, fc5, ...``. ``model.layer_names`` lists the table.
``forward(x, until="conv5_3")`` stops early and returns that activation (a list of names returns a
dict name -> activation), which is how saliency and class-model code reach inside the net. A
convolution and the ReLU after it run as one call, ``conv(x, relu=True)`` (one op on the fast tier),
unless the convolution's own output is asked for.

    model = vgg.load("weights/vgg16.h5")          # eval mode; model.meta, model.classes
                                                 # (models.load does the same for any network)
    logits = model(mg.Tensor(batch))             # batch (N, 3, 224, 224) float32, preprocessed
"""
import sys
from dataclasses import dataclass, field

import numpy as np

import minigrad as mg
from minigrad import nn

from . import imagenet, network
from .formats import hdf5
from .formats.common import WeightFile, WeightsError, square_side
from .network import IMAGENET_RGB, default_meta, num_parameters, save  # noqa: F401  (part of vgg's surface)

#: conv widths per block for the paper's configurations A, B, D, E.
STANDARD = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}

@dataclass
class VGGConfig(network.Config):
    """A VGG-style network.

    blocks : conv widths per block, e.g. [[16, 16], [32, 32], [64, 64]]
    fc : hidden fully connected widths, e.g. [4096, 4096]; None for a net without its classifier
    num_classes : outputs of the last fc layer (0 when fc is None)
    input_size : (H, W) the classifier was built for
    """
    name: str
    blocks: list
    fc: list = field(default_factory=lambda: [4096, 4096])
    num_classes: int = 1000
    input_size: tuple = (224, 224)
    in_channels: int = 3
    dropout: float = 0.5

    def __post_init__(self):
        if isinstance(self.input_size, int):
            self.input_size = (self.input_size, self.input_size)
        self.input_size = tuple(int(s) for s in self.input_size)
        self.blocks = [[int(w) for w in block] for block in self.blocks]
        if not self.blocks or not all(self.blocks):
            raise ValueError(f"VGG config {self.name!r}: blocks must be non-empty lists of conv widths")
        if self.fc is not None:
            self.fc = [int(w) for w in self.fc]
            if self.num_classes < 1:
                raise ValueError(f"VGG config {self.name!r}: num_classes must be >= 1")
            h, w = self.feature_size
            if h < 1 or w < 1:
                raise ValueError(f"VGG config {self.name!r}: input {self.input_size} is too small for "
                                 f"{len(self.blocks)} pooling layers")
        else:
            self.num_classes = 0

    @property
    def feature_size(self):
        """(h, w) of the last pooling layer's output."""
        h, w = self.input_size
        for _ in self.blocks:
            h, w = h // 2, w // 2
        return h, w


def config_for(arch, num_classes=None, input_size=None):
    """A VGGConfig from a standard name, a dict, or a VGGConfig; num_classes/input_size override."""
    if isinstance(arch, VGGConfig):
        cfg = VGGConfig.from_dict(arch.to_dict(), arch.name)
    elif isinstance(arch, dict):
        cfg = VGGConfig.from_dict(arch)
    elif isinstance(arch, str) and arch.lower() in STANDARD:
        cfg = VGGConfig(arch.lower(), STANDARD[arch.lower()])
    else:
        raise ValueError(f"unknown VGG architecture {arch!r}: use one of {', '.join(STANDARD)} "
                         "or a config dict with 'blocks' and 'fc'")
    if num_classes is not None or input_size is not None:
        d = cfg.to_dict()
        d.update({k: v for k, v in (("num_classes", num_classes), ("input_size", input_size)) if v is not None})
        cfg = VGGConfig.from_dict(d, cfg.name)
    return cfg


def layer_shapes(config):
    """{layer name: (weight shape, bias shape)} in network order, for checking weight files."""
    shapes, c = {}, config.in_channels
    for b, widths in enumerate(config.blocks, 1):
        for i, width in enumerate(widths, 1):
            shapes[f"conv{b}_{i}"] = ((width, c, 3, 3), (width,))
            c = width
    if config.fc is not None:
        h, w = config.feature_size
        n_in = c * h * w
        for k, width in enumerate(config.fc + [config.num_classes]):
            shapes[f"fc{len(config.blocks) + 1 + k}"] = ((width, n_in), (width,))
            n_in = width
    return shapes


class VGG(nn.Module):
    """A VGG network whose layers are attributes named as in the paper (``conv1_1``, ``fc8``...).

    Attributes
    ----------
    config : VGGConfig
    layer_names : tuple of str      the table, in order
    meta : dict                     preprocessing (channel_order, scale, mean, std, resize, crop, input_size)
    classes : list of str           one name per output
    wnids : list of str or None
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        names, c = [], config.in_channels
        for b, widths in enumerate(config.blocks, 1):
            for i, width in enumerate(widths, 1):
                names += self._add(f"conv{b}_{i}", nn.Conv2d(c, width, 3, padding=1))
                names += self._add(f"relu{b}_{i}", nn.ReLU())
                c = width
            names += self._add(f"pool{b}", nn.MaxPool2d(2, 2))
        if config.fc is not None:
            names += self._add("flatten", nn.Flatten())
            h, w = config.feature_size
            n_in, n = c * h * w, len(config.blocks) + 1
            for width in config.fc:
                names += self._add(f"fc{n}", nn.Linear(n_in, width))
                names += self._add(f"relu{n}", nn.ReLU())
                names += self._add(f"drop{n}", nn.Dropout(config.dropout))
                n_in, n = width, n + 1
            names += self._add(f"fc{n}", nn.Linear(n_in, config.num_classes))
        self.layer_names = tuple(names)
        self.meta = default_meta(config)
        self.classes = [f"class_{i}" for i in range(config.num_classes)]
        self.wnids = None

    def _add(self, name, module):
        setattr(self, name, module)
        return [name]

    @property
    def arch(self):
        return self.config.name

    @property
    def weight_layers(self):
        """Names of the layers that have weights (conv and fc), in order."""
        return [n for n in self.layer_names if isinstance(getattr(self, n), (nn.Conv2d, nn.Linear))]

    def layer(self, name):
        """The module of a table name (``conv5_3``)."""
        return getattr(self, name)

    def forward(self, x, until=None):
        """Run the table on x (N, C, H, W); stop at ``until`` (a name or a list of names).

        Returns the logits (N, num_classes) or, without a classifier, pool{last}'s output;
        the activation of ``until``; or a dict {name: activation} when ``until`` is a list.
        """
        if not isinstance(x, mg.Tensor):
            x = mg.Tensor(x)
        wanted = network.requested(self, until)
        stop = max(self.layer_names.index(n) for n in wanted) if wanted else len(self.layer_names) - 1
        self._check_input(x, stop)
        out = {}
        for names in self._calls(stop, wanted):
            x = getattr(self, names[0])(x, relu=True) if len(names) == 2 else getattr(self, names[0])(x)
            for name in set(names) & set(wanted):
                out[name] = x
        return network.answer(until, out, x)

    def _calls(self, stop, wanted):
        """The table up to ``stop`` as the calls that run it, each a tuple of the names it computes: a
        convolution and the ReLU after it are one call, ``conv(x, relu=True)`` (one op on the fast tier),
        unless the convolution's own output is wanted; every other layer is a call of its own."""
        names, calls = self.layer_names[:stop + 1], []
        for k, name in enumerate(names):
            if calls and len(calls[-1]) == 2 and calls[-1][1] == name:
                continue                                                # run with the convolution before it
            fuse = (isinstance(getattr(self, name), nn.Conv2d) and name not in wanted and k + 1 < len(names)
                    and isinstance(getattr(self, names[k + 1]), nn.ReLU))
            calls.append((name, names[k + 1]) if fuse else (name,))
        return calls

    def _check_input(self, x, stop):
        c = self.config.in_channels
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"{self.arch}: input has shape {tuple(x.shape)}, expected (N, {c}, H, W)")
        past_flatten = "flatten" in self.layer_names and stop >= self.layer_names.index("flatten")
        if past_flatten and tuple(x.shape[2:]) != self.config.input_size:
            h, w = self.config.input_size
            raise ValueError(f"{self.arch}: input has shape {tuple(x.shape)}, its classifier needs "
                             f"(N, {c}, {h}, {w})")

    def __repr__(self):
        rows = [f"  {n:<9} {getattr(self, n)!r}" for n in self.layer_names]
        return f"VGG({self.arch},\n" + "\n".join(rows) + "\n)"


def build(arch_or_config, num_classes=None, input_size=None, seed=None):
    """A new VGG with He-initialised weights (std sqrt(2 / fan_in)), zero biases, in training mode.

    ``arch_or_config``: "vgg11" | "vgg13" | "vgg16" | "vgg19", a dict or a :class:`VGGConfig`.
    ``num_classes`` and ``input_size`` override the config's (standard nets: 1000 and 224).
    """
    if seed is not None:
        mg.manual_seed(seed)
    model = VGG(config_for(arch_or_config, num_classes, input_size))
    return model.train()


def describe(blocks):
    """'13 conv layers in blocks 2-2-3-3-3' for messages."""
    return f"{sum(map(len, blocks))} conv layers in blocks {'-'.join(str(len(b)) for b in blocks)}"


def from_foreign(foreign, arch=None):
    """Name and check the layers a Keras or torchvision file holds: a :class:`WeightFile`.

    The architecture is inferred from the layers (count and widths); ``arch=`` makes it a check.
    Standard nets get ImageNet's class names; resize/crop/input_size follow from the first fc layer.
    """
    path, blocks, fcs = foreign.path, foreign.blocks, list(foreign.fcs)
    if len(blocks) == 1:                                 # the file did not say where blocks end
        n = len(blocks[0])
        std = next((cfg for cfg in STANDARD.values() if sum(map(len, cfg)) == n), None)
        if std is None:
            raise WeightsError(f"weights file {path}: cannot tell the blocks of its {n} conv layers "
                               "apart (no pooling layers listed)")
        it = iter(blocks[0])
        blocks = [[next(it) for _ in blk] for blk in std]
    widths = [[w.shape[0] for w, _ in block] for block in blocks]
    if fcs:
        input_size = square_side(path, fcs[0][0].shape[1], widths[-1][-1]) * 2 ** len(blocks)
    else:
        input_size = 224
    fc = [w.shape[0] for w, _ in fcs[:-1]] if fcs else None
    num_classes = fcs[-1][0].shape[0] if fcs else 0
    name = next((n for n, std in STANDARD.items() if std == widths), None)
    if name is None or input_size != 224 or fc not in (None, [4096, 4096]):
        name = "custom"
    if arch is not None and arch.lower() != name:
        raise WeightsError(f"weights file {path}: holds a {name} net ({describe(blocks)}), not {arch}")
    config = VGGConfig(name, widths, fc, num_classes or 1000, input_size)
    layers = dict(zip(layer_shapes(config),
                      [{"weight": np.ascontiguousarray(w, np.float32), "bias": np.ascontiguousarray(b, np.float32)}
                       for w, b in [wb for block in blocks for wb in block] + fcs]))
    hdf5.check_layers(path, layers, layer_shapes(config))
    resize = int(round(input_size * 256 / 224))
    meta = dict(foreign.meta, resize=resize, crop=input_size, input_size=(input_size, input_size))
    if num_classes == 1000:
        classes, wnids = imagenet.names(), imagenet.wnids()
    else:
        classes, wnids = [f"class_{i}" for i in range(num_classes)], None
    return WeightFile(arch=name, config=config.to_dict(), meta=meta, classes=classes,
                      layers=layers, wnids=wnids, path=path)


def is_vgg(wf):
    """True when a WeightFile describes a VGG: a standard name, or a config with conv ``blocks``."""
    return wf.arch.lower() in STANDARD or "blocks" in wf.config


def from_weightfile(wf, arch=None):
    """Build a VGG from a :class:`hdf5.WeightFile`, checking architecture and every layer shape."""
    network.check_arch(wf, arch)
    if "blocks" in wf.config:
        try:
            config = VGGConfig.from_dict(wf.config, wf.arch)
        except (TypeError, ValueError) as e:
            raise WeightsError(f"weights file {wf.path}: bad 'config' attribute: {e}") from None
    elif wf.arch.lower() in STANDARD:
        config = config_for(wf.arch, num_classes=wf.config.get("num_classes") or len(wf.classes),
                            input_size=wf.meta.get("input_size"))
    else:
        raise WeightsError(f"weights file {wf.path}: unknown architecture {wf.arch!r} and no 'config' "
                           f"attribute (known: {', '.join(STANDARD)})")
    return network.built(wf, VGG, config, layer_shapes(config))


def load(path, device="cpu", arch=None):
    """Load a VGG from a weights file, in eval mode, on ``device`` ('cpu' or 'gpu').

    ``path``: the project's HDF5; a Keras .h5 or a torchvision .pth is converted on the fly.
    ``arch``: if given, the file must hold that architecture (else WeightsError).
    """
    return network.load(sys.modules[__name__], path, device, arch)


__all__ = ["VGG", "VGGConfig", "STANDARD", "build", "load", "save", "config_for", "layer_shapes",
           "from_weightfile", "from_foreign", "is_vgg", "WeightsError", "num_parameters"]
