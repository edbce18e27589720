"""ResNets (He et al., 2015) in torchvision's layout, as a table of named layers.

    conv1    7x7, stride 2, padding 3, no bias  ->  bn1  ->  relu  ->  maxpool (3x3, stride 2, padding 1)
    layer1 ... layer4   stages of residual blocks; the first block of layers 2-4 has stride 2
    avgpool  the global average pool, (N, C, H, W) -> (N, C)
    fc       the logits

    BasicBlock (resnet18, 34; expansion 1)      Bottleneck (resnet50, 101, 152; expansion 4)
        conv1 3x3, stride s -> bn1 -> relu          conv1 1x1            -> bn1 -> relu
        conv2 3x3           -> bn2                  conv2 3x3, stride s  -> bn2 -> relu   (torchvision's "v1.5")
                                                    conv3 1x1            -> bn3
        + shortcut -> relu                          + shortcut -> relu

    shortcut: x itself, or ``downsample`` = 1x1 conv (stride s, no bias) -> BN when the shape changes

Every ReLU is a call of ``F.relu`` or a ReLU asked of ``F.conv2d`` (``relu=True``), so the ReLU rule
in force (gradient, deconvnet, guided) applies to each of them, the one after each residual addition
included. In eval mode, when nothing needs the weights' gradient, the stem and every block that no
``until`` reaches into run folded: each batch norm folded into its convolution, the shortcut and the
ReLU given to the convolution too (blocks.py: ``fold_bn``, ``conv_bn``). (torchvision's block calls its one
ReLU module three times, which hook-based tools that patch a ReLU module get wrong.)

The names are torchvision's state-dict names, so a torchvision file loads key for key. The table,
``model.layer_names``: ``conv1, bn1, relu, maxpool``, then for each block its layers
(``layer1.0.conv1, layer1.0.bn1, ..., layer1.0.downsample.0, layer1.0.downsample.1``) and the
block's output (``layer1.0``), then the stage's output (``layer1``, the same as its last block's),
..., ``avgpool, fc``. ``forward(x, until="layer3")`` stops there; ``until=[names]`` returns a dict.

A custom :class:`ResNetConfig` changes widths, depths, the number of stages and the stem; for 64x64
inputs, e.g., a 3x3 stride-1 stem without max pool::

    resnet.build(dict(name="shapes_resnet", block="basic", depths=[2, 2, 2], widths=[16, 32, 64],
                      stem_width=16, stem_kernel=3, stem_stride=1, maxpool=False,
                      num_classes=10, input_size=64))
"""
import re
import sys
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

import minigrad as mg
from minigrad import nn

from . import imagenet, network
from .blocks import BLOCKS, BasicBlock, Bottleneck, ResidualBlock, _no_tap, conv_bn, folds
from .formats import hdf5
from .formats.common import WeightFile, WeightsError, fail, shape_text
from .network import default_meta, num_parameters, save  # noqa: F401  (part of resnet's surface)

#: block type and blocks per stage of torchvision's ResNets (their widths: 64, 128, 256, 512).
STANDARD = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet34": ("basic", [3, 4, 6, 3]),
            "resnet50": ("bottleneck", [3, 4, 6, 3]), "resnet101": ("bottleneck", [3, 4, 23, 3]),
            "resnet152": ("bottleneck", [3, 8, 36, 3])}
STANDARD_WIDTHS = [64, 128, 256, 512]
EXPANSION = {name: block.expansion for name, block in BLOCKS.items()}


@dataclass
class ResNetConfig(network.Config):
    """A ResNet.

    block : "basic" or "bottleneck"
    depths : blocks per stage, e.g. [3, 4, 6, 3]
    widths : per stage, the width of the 3x3 convolutions; a stage outputs ``width * expansion``
    stem_width, stem_kernel, stem_stride : conv1 (padding stem_kernel // 2); maxpool : after it or not
    num_classes : outputs of fc; input_size : (H, W) it was trained at (any size runs: the pool is global)
    """
    name: str
    block: str
    depths: list
    widths: list = field(default_factory=lambda: list(STANDARD_WIDTHS))
    stem_width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    maxpool: bool = True
    num_classes: int = 1000
    input_size: tuple = (224, 224)
    in_channels: int = 3

    def __post_init__(self):
        if isinstance(self.input_size, int):
            self.input_size = (self.input_size, self.input_size)
        self.input_size = tuple(int(s) for s in self.input_size)
        self.depths, self.widths = [int(d) for d in self.depths], [int(w) for w in self.widths]
        problem = (f"block must be one of {', '.join(EXPANSION)}, got {self.block!r}" if self.block not in EXPANSION
                   else "depths and widths must be lists of the same length" if len(self.depths) != len(self.widths)
                   else "depths and widths must be >= 1" if min(self.depths + self.widths, default=0) < 1
                   else "stem_kernel must be odd" if self.stem_kernel % 2 == 0
                   else "num_classes must be >= 1" if self.num_classes < 1 else None)
        if problem:
            raise ValueError(f"ResNet config {self.name!r}: {problem}")

    @property
    def expansion(self):
        return EXPANSION[self.block]

    @property
    def fc(self):
        """The hidden fully connected widths, as in VGGConfig: none (``None`` would mean no classifier)."""
        return []

    def describe(self):
        """'bottleneck blocks 3-4-6-3, widths 64-128-256-512' for messages."""
        return (f"{self.block} blocks {'-'.join(map(str, self.depths))}, "
                f"widths {'-'.join(map(str, self.widths))}")


def config_for(arch, num_classes=None, input_size=None):
    """A ResNetConfig from a standard name, a dict, or a ResNetConfig; num_classes/input_size override."""
    if isinstance(arch, ResNetConfig):
        d = arch.to_dict()
    elif isinstance(arch, dict):
        d = dict(arch)
    elif isinstance(arch, str) and arch.lower() in STANDARD:
        block, depths = STANDARD[arch.lower()]
        d = dict(name=arch.lower(), block=block, depths=depths)
    else:
        raise ValueError(f"unknown ResNet architecture {arch!r}: use one of {', '.join(STANDARD)} "
                         "or a config dict with 'block' and 'depths'")
    d.update({k: v for k, v in (("num_classes", num_classes), ("input_size", input_size)) if v is not None})
    return ResNetConfig.from_dict(d)


class ResNet(nn.Module):
    """A ResNet whose modules carry torchvision's names (``conv1``, ``layer3.5.bn2``, ``fc``).

    Attributes: config (ResNetConfig), layer_names (the table), meta, classes, wnids, as VGG's.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        k = config.stem_kernel
        self.conv1 = nn.Conv2d(config.in_channels, config.stem_width, k, stride=config.stem_stride,
                               padding=k // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(config.stem_width)
        self.relu = nn.ReLU()
        steps = ["conv1", "bn1", "relu"]
        if config.maxpool:
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            steps.append("maxpool")
        names, self._stage_of = list(steps), {}
        c, block = config.stem_width, BLOCKS[config.block]
        for i, (depth, width) in enumerate(zip(config.depths, config.widths), 1):
            stage = []
            for b in range(depth):
                stage.append(block(c, width, stride=2 if b == 0 and i > 1 else 1))
                c = width * block.expansion
                steps.append(f"layer{i}.{b}")
                names += [f"layer{i}.{b}.{n}" for n in stage[-1].names] + [steps[-1]]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            self._stage_of[steps[-1]] = f"layer{i}"                   # the stage ends with this block
            names.append(f"layer{i}")
        self.avgpool = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(c, config.num_classes)
        self._steps = tuple(steps + ["avgpool", "fc"])
        self.layer_names = tuple(names + ["avgpool", "fc"])
        self.meta = default_meta(config)
        self.classes = [f"class_{i}" for i in range(config.num_classes)]
        self.wnids = None

    @property
    def arch(self):
        return self.config.name

    def layer(self, name):
        """The module of a table name (``layer4.2.conv3``, ``layer2``, ``fc``)."""
        if name not in self.layer_names:
            network.requested(self, name)                               # raises, showing the table
        module = self
        for part in name.split("."):
            module = module._modules[part]
        return module

    @property
    def weight_layers(self):
        """Names of the layers that have weights (conv and fc), in order."""
        return [n for n in self.layer_names if isinstance(self.layer(n), (nn.Conv2d, nn.Linear))]

    def forward(self, x, until=None):
        """Run the network on x (N, C, H, W); stop at ``until`` (a name or a list of names).

        Returns the logits (N, num_classes); the activation of ``until``; or a dict
        {name: activation} when ``until`` is a list.
        """
        if not isinstance(x, mg.Tensor):
            x = mg.Tensor(x)
        wanted = set(network.requested(self, until))
        c = self.config.in_channels
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"{self.arch}: input has shape {tuple(x.shape)}, expected (N, {c}, H, W)")
        found = {}

        def keep(name, activation):
            if name in wanted:
                found[name] = activation
            return activation

        steps = list(self._steps)
        if not wanted & {"conv1", "bn1"} and folds(self, [self.conv1, self.bn1]):   # the stem as one op
            x = keep("relu", conv_bn(self.conv1, self.bn1, x, relu=True))
            steps = steps[3:]
            if wanted and len(found) == len(wanted):                     # only the stem's ReLU was asked for
                steps = []
        for step in steps:
            module = self.layer(step)
            if isinstance(module, ResidualBlock):
                tapped = any(name.startswith(step + ".") for name in wanted)   # else the block may run folded
                tap = (lambda name, a, block=step: keep(f"{block}.{name}", a)) if tapped else _no_tap
                x = keep(step, module(x, tap=tap))
                if step in self._stage_of:
                    keep(self._stage_of[step], x)
            else:
                x = keep(step, module(x))
            if wanted and len(found) == len(wanted):                     # nothing more is asked for
                break
        return network.answer(until, found, x)

    def __repr__(self):
        return (f"ResNet({self.arch}: {self.config.describe()}, {len(self.weight_layers)} conv/fc layers, "
                f"{num_parameters(self):,} parameters)")


def build(arch_or_config, num_classes=None, input_size=None, seed=None, zero_init_residual=False):
    """A new ResNet: He-normal convolutions, BN weight 1 and bias 0, in training mode.

    ``arch_or_config``: "resnet18" ... "resnet152", a dict or a :class:`ResNetConfig`.
    ``zero_init_residual``: start each block's last BN at weight 0, so every block starts as the
    identity (Goyal et al. 2017; torchvision's option of that name).
    """
    if seed is not None:
        mg.manual_seed(seed)
    model = ResNet(config_for(arch_or_config, num_classes, input_size))
    if zero_init_residual:
        for name in model.layer_names:
            if isinstance(model.layer(name), ResidualBlock):
                model.layer(f"{name}.{model.layer(name).layers[-1]}").weight.data[...] = 0
    return model.train()


def layer_shapes(config):
    """{layer: {dataset: shape}} in network order, read off a network built without initialising."""
    with nn.no_init():
        model = ResNet(config)
    return {name: {k: tuple(a.shape) for k, a in group.items()}
            for name, group in network.file_layers(model).items()}


def is_resnet(wf):
    """True when a WeightFile describes a ResNet: a standard name, or a config with block and depths."""
    return wf.arch.lower() in STANDARD or {"block", "depths"} <= set(wf.config)


_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")
_BATCH_NORM = re.compile(r"(^|\.)(bn\d|downsample\.1)$")


def _infer_config(path, layers, arch):
    """The ResNetConfig that torchvision-named layers hold: the depth from the block keys, the widths
    from the convolutions (per stage, the most common); with ``arch``, that standard net's config."""
    stages = {}
    for name in layers:
        if m := _BLOCK_KEY.match(name):
            stages.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    depths = [len(stages.get(s, ())) for s in range(1, max(stages, default=0) + 1)]
    if any(stages.get(s) != set(range(d)) for s, d in enumerate(depths, 1)):
        fail(path, "its blocks are not numbered layer1.0, layer1.1, ..., layer2.0, ...: found "
                   + ", ".join(f"layer{s}.{b}" for s in sorted(stages) for b in sorted(stages[s])))
    block = "bottleneck" if any(n.endswith(".conv3") for n in layers) else "basic"
    name = next((n for n, std in STANDARD.items() if std == (block, depths)), None)
    for layer in ["conv1", "fc"] + [f"layer{s}.0.conv1" for s in range(1, len(depths) + 1)]:
        if "weight" not in layers.get(layer, {}):
            fail(path, f"layer {layer} is missing (a torchvision ResNet has {layer}.weight)")
    stem, fc = layers["conv1"]["weight"], layers["fc"]["weight"]
    if arch is not None:
        if arch.lower() != name:
            fail(path, f"holds a {name or 'custom'} net ({block} blocks {'-'.join(map(str, depths))}), not {arch}")
        return config_for(name, num_classes=fc.shape[0])             # check_layers names a wrong layer
    if stem.ndim != 4 or stem.shape[2:] not in ((7, 7), (3, 3)):
        fail(path, f"layer conv1 has shape {shape_text(stem.shape)}, expected (width, channels, 7, 7) or (..., 3, 3)")
    widths = [Counter(layers[f"layer{s}.{b}.conv1"]["weight"].shape[0] for b in range(d)
                      if "weight" in layers.get(f"layer{s}.{b}.conv1", {})).most_common(1)[0][0]
              for s, d in enumerate(depths, 1)]
    if name is not None and widths == STANDARD_WIDTHS and stem.shape == (64, 3, 7, 7):
        return config_for(name, num_classes=fc.shape[0])
    k = stem.shape[2]                                   # 7x7: torchvision's stem; 3x3: the CIFAR one
    return ResNetConfig("custom", block, depths, widths, stem_width=stem.shape[0], stem_kernel=k,
                        stem_stride=2 if k == 7 else 1, maxpool=k == 7, num_classes=fc.shape[0],
                        in_channels=stem.shape[1])


def from_foreign(foreign, arch=None):
    """Name and check the layers of a torchvision ResNet file: a :class:`WeightFile`.

    The depth (18, 34, 50, 101, 152) and the widths are read off the keys and shapes; ``arch=`` makes
    it a check. A file without ``num_batches_tracked`` (saved before PyTorch 0.4.1) gets 0.
    """
    path, layers = foreign.path, {}
    for name, group in foreign.layers.items():
        group = dict(group)
        if _BATCH_NORM.search(name) and "num_batches_tracked" not in group:
            group["num_batches_tracked"] = np.zeros((), np.int64)
        layers[name] = {k: np.asarray(v, np.int64 if k == "num_batches_tracked" else np.float32, order="C")
                        for k, v in group.items()}                      # (not ascontiguousarray: it makes () (1,))
    config = _infer_config(path, layers, arch)
    expected = layer_shapes(config)
    hdf5.check_layers(path, layers, expected)
    if config.num_classes == 1000:
        classes, wnids = imagenet.names(), imagenet.wnids()
    else:
        classes, wnids = [f"class_{i}" for i in range(config.num_classes)], None
    return WeightFile(arch=config.name, config=config.to_dict(), meta=dict(default_meta(config), **foreign.meta),
                      classes=classes, layers={n: layers[n] for n in expected}, wnids=wnids, path=path)


def from_weightfile(wf, arch=None):
    """Build a ResNet from a :class:`WeightFile`, checking architecture and every layer shape."""
    network.check_arch(wf, arch)
    try:
        if {"block", "depths"} <= set(wf.config):
            config = ResNetConfig.from_dict(wf.config, wf.arch)
        elif wf.arch.lower() in STANDARD:
            config = config_for(wf.arch, num_classes=wf.config.get("num_classes") or len(wf.classes),
                                input_size=wf.meta.get("input_size"))
        else:
            raise ValueError(f"unknown architecture {wf.arch!r} and no ResNet config (known: {', '.join(STANDARD)})")
    except (TypeError, ValueError) as e:
        raise WeightsError(f"weights file {wf.path}: bad 'config' attribute: {e}") from None
    return network.built(wf, ResNet, config, layer_shapes(config))


def load(path, device="cpu", arch=None):
    """Load a ResNet from a weights file (ours, or a torchvision .pth), in eval mode, on ``device``."""
    return network.load(sys.modules[__name__], path, device, arch)


__all__ = ["ResNet", "ResNetConfig", "BasicBlock", "Bottleneck", "STANDARD", "build", "load", "save",
           "config_for", "layer_shapes", "from_weightfile", "from_foreign", "is_resnet", "num_parameters"]
