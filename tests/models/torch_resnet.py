"""A torchvision-layout ResNet written out in PyTorch: the reference the ResNet tests compare with.

torchvision's own ResNet is not used (it is not installed, and its blocks call one ReLU module
three times, which is what hook-based guided backprop gets wrong). Here every ReLU call goes
through ``TorchRelu`` (tests/minigrad/test_against_torch.py: the three backward rules written out
in torch), whose backward applies the rule given to that call: the ReLU after bn1, after bn2 in a
bottleneck, and after every residual addition.
``relu_rule_at`` can restrict the rule to some calls (the rest use the gradient rule), which
gives the tests a wrong reference to tell apart from the right one.

Names (``conv1``, ``layer2.0.downsample.1``, ``fc``) and state-dict keys are torchvision's;
``forward(x, rule, taps)`` fills ``taps`` with every named activation (the names of our table).
torch is a test-only reference: the library never imports it.
"""
import math

import torch
from torch import nn

from ..minigrad.test_against_torch import TorchRelu


class Block(nn.Module):
    """BasicBlock (bottleneck=False) or Bottleneck, stride in the 3x3, torchvision's names."""

    def __init__(self, c_in, width, stride, bottleneck):
        super().__init__()
        out = width * (4 if bottleneck else 1)
        self.bottleneck = bottleneck
        if bottleneck:
            self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
        else:
            self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or c_in != out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x, relu, tap):
        out = relu(tap("bn1", self.bn1(tap("conv1", self.conv1(x)))), "inner")
        out = tap("bn2", self.bn2(tap("conv2", self.conv2(out))))
        if self.bottleneck:
            out = relu(out, "inner")
            out = tap("bn3", self.bn3(tap("conv3", self.conv3(out))))
        shortcut = x
        if self.downsample is not None:
            shortcut = tap("downsample.1", self.downsample[1](tap("downsample.0", self.downsample[0](x))))
        return relu(out + shortcut, "after_add")


class TorchResNet(nn.Module):
    def __init__(self, bottleneck, depths, widths=(64, 128, 256, 512), stem_width=64, num_classes=1000,
                 stem_kernel=7, maxpool=True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem_width, stem_kernel, 2 if maxpool else 1, stem_kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if maxpool else None
        c = stem_width
        for i, (depth, width) in enumerate(zip(depths, widths), 1):
            blocks = []
            for b in range(depth):
                blocks.append(Block(c, width, 2 if b == 0 and i > 1 else 1, bottleneck))
                c = width * (4 if bottleneck else 1)
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.stages = len(depths)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x, rule="gradient", taps=None, relu_rule_at=("stem", "inner", "after_add")):
        taps = {} if taps is None else taps

        def tap(name, t):
            taps[name] = t
            return t

        def relu(t, where):
            return TorchRelu.apply(t, rule if where in relu_rule_at else "gradient")

        x = tap("relu", relu(tap("bn1", self.bn1(tap("conv1", self.conv1(x)))), "stem"))
        if self.maxpool is not None:
            x = tap("maxpool", self.maxpool(x))
        for i in range(1, self.stages + 1):
            for b, block in enumerate(getattr(self, f"layer{i}")):
                x = tap(f"layer{i}.{b}", block(x, relu, lambda n, t, p=f"layer{i}.{b}": tap(f"{p}.{n}", t)))
            tap(f"layer{i}", x)
        x = tap("avgpool", x.mean(dim=(2, 3)))
        return tap("fc", self.fc(x))


def randomise(model, seed):
    """Random weights AND random BN statistics (not the defaults), so that a mapped-wrong mean,
    variance, weight or bias changes the output: conv He-normal; BN weight U(0.5, 1.5), bias
    U(-0.3, 0.3), running_mean N(0, 0.3), running_var U(0.5, 2), num_batches_tracked random; fc
    N(0, 1/fan_in), bias U(-0.1, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, math.sqrt(2.0 / m.weight[0].numel()), generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.3, 0.3, generator=g)
                m.running_mean.normal_(0.0, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.num_batches_tracked.fill_(int(torch.randint(1, 10000, (1,), generator=g)))
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.weight.shape[1]), generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)
    return model.eval()


#: (bottleneck, depths) of torchvision's nets.
DEPTHS = {"resnet18": (False, [2, 2, 2, 2]), "resnet34": (False, [3, 4, 6, 3]),
          "resnet50": (True, [3, 4, 6, 3]), "resnet101": (True, [3, 4, 23, 3]),
          "resnet152": (True, [3, 8, 36, 3])}


def torch_resnet(arch, seed=0, **kwargs):
    """A torchvision-layout ``arch`` ("resnet18" ... "resnet152") with random weights and statistics, float32, eval."""
    bottleneck, depths = DEPTHS[arch]
    return randomise(TorchResNet(bottleneck, depths, **kwargs), seed)
