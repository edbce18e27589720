"""The two residual blocks of torchvision's ResNets; ``resnet.py`` stacks them.

    BasicBlock (expansion 1)                    Bottleneck (expansion 4)
        conv1 3x3, stride s -> bn1 -> relu          conv1 1x1            -> bn1 -> relu
        conv2 3x3           -> bn2                  conv2 3x3, stride s  -> bn2 -> relu
                                                    conv3 1x1            -> bn3
        + shortcut -> relu                          + shortcut -> relu

The shortcut is x itself, or ``downsample`` = 1x1 conv (stride s, no bias) -> BN when the block
changes the shape. All convolutions are without bias (the BN after each has one).

In eval mode, when nothing needs the weights' gradient and no layer inside the block is tapped, a block
runs folded: each batch norm folded into its convolution (``fold_bn``), and the shortcut's addition
and the ReLU after it given to the last convolution (``conv_bn``), so each line above is one
``F.conv2d`` (one op on the fast tier; the simple tier composes the same ops).
"""
import minigrad as mg
from minigrad import functional as F
from minigrad import nn


def _no_tap(name, x):
    return x


def fold_bn(conv, bn):
    """An eval-mode batch norm after a convolution as a scale and a shift per output channel:

        bn(conv(x)) = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta = scale * conv_w(x) + shift
        scale = gamma / sqrt(var + eps),    shift = (b - mean) * scale + beta

    with conv_w the convolution without its bias. Arrays (O,) of the weights' dtype and device. The fast
    tier applies the scale to the output, in the pass that adds the shift, rather than to the weights,
    whose pass would cost more on the late layers (docs/performance.md).
    """
    xp = mg.get_array_module(conv.weight)
    scale = bn.weight.data / xp.sqrt(bn.running_var + bn.eps)                      # (O,)
    bias = conv.bias.data if conv.bias is not None else 0
    return scale, (bias - bn.running_mean) * scale + bn.bias.data


def conv_bn(conv, bn, x, residual=None, relu=False):
    """relu(bn(conv(x)) + residual) as one ``F.conv2d``, the batch norm folded in (``fold_bn``)."""
    scale, shift = fold_bn(conv, bn)
    return F.conv2d(x, conv.weight, shift, conv.stride, conv.padding, scale=scale, residual=residual, relu=relu)


def folds(module, layers=None):
    """Whether ``module`` (a block, or the ResNet whose stem is ``layers``) may run folded: ``layers``
    (default: the module) in eval mode, every part of them, with no gradient needed for their weights,
    and the module's ``relu`` a ReLU (not swapped for something else, as deconvnet.without_relus does:
    the fused ReLU would not see it)."""
    layers = layers or [module]
    training = any(m.training for layer in layers for _, m in layer.named_modules())
    learning = mg.is_grad_enabled() and any(p.requires_grad for layer in layers for p in layer.parameters())
    return isinstance(module.relu, nn.ReLU) and not training and not learning


class ResidualBlock(nn.Module):
    """What both blocks share: the shortcut, and the names of their layers.

    ``forward(x, tap)`` calls ``tap(name, activation)`` on each layer's output (``"bn1"``,
    ``"downsample.0"``, ...) and goes on with what it returns: how the ResNet collects ``until``. Without
    a tap, and when ``folds``, it runs folded (the module docstring).
    """
    layers = ()

    def _add_downsample(self, c_in, c_out, stride):
        """1x1 conv + BN on the shortcut when the block changes the shape; else None (the identity)."""
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def shortcut(self, x, tap):
        if self.downsample is None:
            return x
        conv, bn = self.downsample
        return tap("downsample.1", bn(tap("downsample.0", conv(x))))

    def folded_shortcut(self, x):
        return x if self.downsample is None else conv_bn(*self.downsample, x)

    @property
    def names(self):
        return list(self.layers) + ([] if self.downsample is None else ["downsample.0", "downsample.1"])


class BasicBlock(ResidualBlock):
    """3x3 (stride s) -> BN -> ReLU -> 3x3 -> BN, + shortcut, -> ReLU."""
    expansion = 1
    layers = ("conv1", "bn1", "conv2", "bn2")

    def __init__(self, c_in, width, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self._add_downsample(c_in, width, stride)

    def forward(self, x, tap=_no_tap):
        if tap is _no_tap and folds(self):
            out = conv_bn(self.conv1, self.bn1, x, relu=True)
            return conv_bn(self.conv2, self.bn2, out, residual=self.folded_shortcut(x), relu=True)
        out = self.relu(tap("bn1", self.bn1(tap("conv1", self.conv1(x)))))
        out = tap("bn2", self.bn2(tap("conv2", self.conv2(out))))
        return self.relu(out + self.shortcut(x, tap))


class Bottleneck(ResidualBlock):
    """1x1 -> BN -> ReLU -> 3x3 (stride s) -> BN -> ReLU -> 1x1 (x4) -> BN, + shortcut, -> ReLU."""
    expansion = 4
    layers = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")

    def __init__(self, c_in, width, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU()
        self._add_downsample(c_in, width * 4, stride)

    def forward(self, x, tap=_no_tap):
        if tap is _no_tap and folds(self):
            out = conv_bn(self.conv1, self.bn1, x, relu=True)
            out = conv_bn(self.conv2, self.bn2, out, relu=True)
            return conv_bn(self.conv3, self.bn3, out, residual=self.folded_shortcut(x), relu=True)
        out = self.relu(tap("bn1", self.bn1(tap("conv1", self.conv1(x)))))
        out = self.relu(tap("bn2", self.bn2(tap("conv2", self.conv2(out)))))
        out = tap("bn3", self.bn3(tap("conv3", self.conv3(out))))
        return self.relu(out + self.shortcut(x, tap))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
