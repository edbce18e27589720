"""models/resnet.py's layout written out in PyTorch, with torchvision's names: the reference the ResNet
tests compare with, and the network scripts/benchmark.py times PyTorch on when torchvision is missing.

    net = torch_reference.resnet(bottleneck=True, depths=[3, 4, 6, 3])     # ResNet-50's layout
    net.load_state_dict(state)              # torchvision's keys, which are also models/resnet.py's
    logits = net(x)                         # x a torch tensor (N, 3, H, W)
    logits = net(x, taps=taps, relu=relu)   # taps: every named activation; every ReLU a call relu(t, where)

Names (``conv1``, ``layer2.0.downsample.1``, ``fc``) and state-dict keys are torchvision's; the names
``taps`` receives are those of the table models/resnet.py builds (``layer1.0.bn1``, ``layer1.0``,
``layer1``, ``avgpool``, ...). Each ReLU is a call of ``relu(t, where)``, ``where`` being "stem",
"inner" (after bn1, and after bn2 in a bottleneck) or "after_add", so a test can give each call its own
backward rule (tests/models/torch_resnet.py); the default is torch's ReLU, in place when nothing is
tapped (as torchvision's). torchvision's own ResNet calls one ReLU module three times per block,
which a per-call rule cannot follow.

PyTorch is not a dependency: torch is imported when a network is first built, never by ``import models``.
"""
import functools

#: (bottleneck, depths) of torchvision's nets.
DEPTHS = {"resnet18": (False, [2, 2, 2, 2]), "resnet34": (False, [3, 4, 6, 3]),
          "resnet50": (True, [3, 4, 6, 3]), "resnet101": (True, [3, 4, 23, 3]),
          "resnet152": (True, [3, 8, 36, 3])}


@functools.cache
def classes():
    """(Block, ResNet), the torch.nn.Module classes of the layout (the first call imports torch)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        """BasicBlock (bottleneck=False) or Bottleneck, the stride in the 3x3, torchvision's names."""

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

    class ResNet(nn.Module):
        def __init__(self, bottleneck, depths, widths=(64, 128, 256, 512), stem_width=64, num_classes=1000,
                     stem_kernel=7, maxpool=True, stem_stride=None):
            super().__init__()
            stride = stem_stride if stem_stride is not None else (2 if maxpool else 1)
            self.conv1 = nn.Conv2d(3, stem_width, stem_kernel, stride, stem_kernel // 2, bias=False)
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

        def forward(self, x, taps=None, relu=None):
            if relu is None:                          # in place, as torchvision's, unless activations are kept
                relu = (lambda t, where: torch.relu_(t)) if taps is None else (lambda t, where: torch.relu(t))
            taps = {} if taps is None else taps

            def tap(name, t):
                taps[name] = t
                return t

            x = tap("relu", relu(tap("bn1", self.bn1(tap("conv1", self.conv1(x)))), "stem"))
            if self.maxpool is not None:
                x = tap("maxpool", self.maxpool(x))
            for i in range(1, self.stages + 1):
                for b, block in enumerate(getattr(self, f"layer{i}")):
                    x = tap(f"layer{i}.{b}", block(x, relu, lambda n, t, p=f"layer{i}.{b}": tap(f"{p}.{n}", t)))
                tap(f"layer{i}", x)
            x = tap("avgpool", x.mean(dim=(2, 3)))
            return tap("fc", self.fc(x))

    return Block, ResNet


def resnet(bottleneck, depths, widths=(64, 128, 256, 512), stem_width=64, num_classes=1000, stem_kernel=7,
           maxpool=True, stem_stride=None):
    """A torch ResNet in this layout, with torch's default initialisation (load a state dict into it).

    ``stem_stride`` None: 2 with the max pool, 1 without; the other arguments as models/resnet.py's
    ResNetConfig. ``resnet(*DEPTHS["resnet50"])`` is torchvision's ResNet-50.
    """
    return classes()[1](bottleneck, depths, widths, stem_width, num_classes, stem_kernel, maxpool, stem_stride)
