"""The two residual blocks of torchvision's ResNets; ``resnet.py`` stacks them.

    BasicBlock (expansion 1)                    Bottleneck (expansion 4)
        conv1 3x3, stride s -> bn1 -> relu          conv1 1x1            -> bn1 -> relu
        conv2 3x3           -> bn2                  conv2 3x3, stride s  -> bn2 -> relu
                                                    conv3 1x1            -> bn3
        + shortcut -> relu                          + shortcut -> relu

The shortcut is x itself, or ``downsample`` = 1x1 conv (stride s, no bias) -> BN when the block
changes the shape. All convolutions are without bias (the BN after each has one).
"""
from minigrad import nn


def _no_tap(name, x):
    return x


class ResidualBlock(nn.Module):
    """What both blocks share: the shortcut, and the names of their layers.

    ``forward(x, tap)`` calls ``tap(name, activation)`` on each layer's output (``"bn1"``,
    ``"downsample.0"``, ...) and goes on with what it returns: how the ResNet collects ``until``.
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
        out = self.relu(tap("bn1", self.bn1(tap("conv1", self.conv1(x)))))
        out = self.relu(tap("bn2", self.bn2(tap("conv2", self.conv2(out)))))
        out = tap("bn3", self.bn3(tap("conv3", self.conv3(out))))
        return self.relu(out + self.shortcut(x, tap))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
