"""Sec. 4 of the paper, made measurable: a deconvnet reconstruction is the gradient with another
ReLU rule, and nothing else.

Convolution and max pooling go backwards identically under all three rules (transposed convolution;
routing through the switches), so the rules can only disagree at ReLUs, and only where the masks
[X_n > 0] (gradient) and [R_{n+1} > 0] (deconvnet) disagree. This module computes all three
reconstructions of the same input, counts those disagreements, and checks the two cases in which
no mask can differ: a net with its ReLUs taken out, and a reconstruction from a layer that comes
before the first ReLU.
"""
import contextlib

import numpy as np

import minigrad as mg
from minigrad import nn, relu_rules

from .gradients import input_gradient, layer_gradient
from .maps import saliency_map


class Identity(nn.Module):
    def forward(self, x):
        return x


@contextlib.contextmanager
def without_relus(model):
    """Inside the block every ReLU module of the net is the identity (the net is linear + pooling):
    those in its table (VGG's ``relu1_1``) and those inside its blocks (a ResNet block's ``relu``,
    which it calls after each BN and after the residual addition)."""
    swapped = [(parent, name, child) for _, parent in model.named_modules()
               for name, child in parent._modules.items() if isinstance(child, nn.ReLU)]
    for parent, name, _ in swapped:
        setattr(parent, name, Identity())
    try:
        yield model
    finally:
        for parent, name, relu in swapped:
            setattr(parent, name, relu)


def relative_difference(a, b):
    """||a - b|| / ||b|| (Frobenius), 0 when both are zero."""
    nb = float(np.linalg.norm(b))
    diff = float(np.linalg.norm(a - b))
    return diff / nb if nb else (0.0 if diff == 0 else float("inf"))


def compare_rules(model, batch, target, layer=None, channel=None):
    """All three reconstructions of ``batch`` and how they differ.

    From the class score ``target`` (or, with ``layer``, from that layer's strongest unit).
    Returns a dict with
      grads : {rule: (N, C, H, W) array}; maps : {rule: (N, H, W) array}
      relative_difference : {rule: ||g_rule - g_gradient|| / ||g_gradient||}
      mask_disagreement : among ReLU units that receive a non-zero signal in the deconvnet pass,
        the fraction where [R_{n+1} > 0] differs from [X_n > 0]
      relu_units : how many ReLU units that counts over
    """
    counts = {"differ": 0, "total": 0}

    def count(x_positive, g, _result):
        signal = g != 0
        counts["differ"] += int((signal & (x_positive != (g > 0))).sum())
        counts["total"] += int(signal.sum())

    grads = {}
    for rule in relu_rules.RULES:
        observer = relu_rules.observe(count) if rule == "deconvnet" else contextlib.nullcontext()
        with observer:
            if layer is None:
                g = input_gradient(model, batch, target, rule=rule)
            else:
                g, _ = layer_gradient(model, batch, layer, channel=channel, rule=rule)
        grads[rule] = mg.backend.to_numpy(g)
    return {
        "grads": grads,
        "maps": {rule: saliency_map(g) for rule, g in grads.items()},
        "relative_difference": {rule: relative_difference(g, grads["gradient"]) for rule, g in grads.items()},
        "mask_disagreement": counts["differ"] / counts["total"] if counts["total"] else 0.0,
        "relu_units": counts["total"],
    }


def equivalence_checks(model, batch, target):
    """The two cases where all rules must agree exactly (bit for bit), and whether they do.

    Returns {case: max |g_rule - g_gradient| over rules} for
      'no ReLUs' : the class-score gradient of the same net with its ReLUs taken out
      'from conv1_1' (the first weight layer's name: conv1 on a ResNet) : the reconstruction from
        that layer, before any ReLU
    """
    first = model.weight_layers[0]
    results = {}
    with without_relus(model):
        g = {r: mg.backend.to_numpy(input_gradient(model, batch, target, rule=r)) for r in relu_rules.RULES}
    results["no ReLUs"] = max(float(np.abs(g[r] - g["gradient"]).max()) for r in relu_rules.RULES)
    g = {r: mg.backend.to_numpy(layer_gradient(model, batch, first, rule=r)[0]) for r in relu_rules.RULES}
    results[f"from {first}"] = max(float(np.abs(g[r] - g["gradient"]).max()) for r in relu_rules.RULES)
    return results
