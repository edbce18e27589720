"""The ResNet tests' PyTorch reference: models/torch_reference.py's layout (torchvision's names and
state-dict keys) with random weights and statistics, and every ReLU call through ``TorchRelu``
(tests/minigrad/test_against_torch.py: the three backward rules written out in torch), whose backward
applies the rule given to that call: the ReLU after bn1, after bn2 in a bottleneck, and after every
residual addition. ``relu_rule_at`` can restrict the rule to some calls (the rest use the gradient
rule), which gives the tests a wrong reference to tell apart from the right one.

``forward(x, rule, taps)`` fills ``taps`` with every named activation (the names of our table).
"""
import math

import torch
from torch import nn

from models.torch_reference import DEPTHS, classes

from ..minigrad.test_against_torch import TorchRelu


class TorchResNet(classes()[1]):
    """The reference layout; ``forward(x, rule, taps, relu_rule_at)`` runs every ReLU through TorchRelu."""

    def forward(self, x, rule="gradient", taps=None, relu_rule_at=("stem", "inner", "after_add")):
        def relu(t, where):
            return TorchRelu.apply(t, rule if where in relu_rule_at else "gradient")
        return super().forward(x, {} if taps is None else taps, relu)


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


def torch_resnet(arch, seed=0, **kwargs):
    """A torchvision-layout ``arch`` ("resnet18" ... "resnet152") with random weights and statistics, float32, eval."""
    bottleneck, depths = DEPTHS[arch]
    return randomise(TorchResNet(bottleneck, depths, **kwargs), seed)
