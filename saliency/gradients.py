"""Gradients with respect to the input image, under any ReLU rule (paper Sec. 3 and 4).

``input_gradient`` is the paper's image-specific class saliency before the map is taken:
``w = dS_c / dI`` at ``I_0``, one backward pass. ``layer_gradient`` starts the backward pass from an
activation inside the net instead of a class score: under the deconvnet rule that is Zeiler & Fergus'
"reconstruction from layer n", which Sec. 4 shows is the same computation with another ReLU rule.

Every function here that takes ``rule`` (and those in maps.py) uses, by default (``rule=None``), the
rule in force: ``with mg.relu_rule("deconvnet"): input_gradient(...)`` gives the deconvnet
reconstruction. An explicit ``rule=`` overrides the switch.

The weights need no gradient here, so they are switched off for the pass: the convolutions then
compute only the input gradient (no weight-gradient GEMMs).
"""
import contextlib

import numpy as np

import minigrad as mg
from minigrad import functional as F

SCORES = ("logit", "probability", "log_probability")


@contextlib.contextmanager
def frozen(model):
    """Eval mode and no weight gradients inside the block; restored afterwards."""
    params = model.parameters()
    flags = [p.requires_grad for p in params]
    training = model.training
    model.eval()
    for p in params:
        p.requires_grad = False
    try:
        yield model
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag
        model.train(training)


def rule_in_force(rule=None):
    """``rule`` if given, else the ReLU rule now in force (``mg.relu_rule``; "gradient" outside any)."""
    return mg.current_rule() if rule is None else rule


def _input_tensor(batch, model):
    data = batch.data if isinstance(batch, mg.Tensor) else batch
    xp = mg.get_array_module(data)
    if data.ndim == 3:
        data = data[None]
    if data.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(data.shape)}")
    if data.dtype.kind != "f":
        raise ValueError(f"expected a float batch in the model's input space, got {data.dtype}")
    if not bool(xp.isfinite(data).all()):
        raise ValueError("the input contains NaN or Inf")
    dtype = model.parameters()[0].dtype
    data = mg.to_device(data, model.device)                            # no copy if already there
    return mg.Tensor(data.astype(dtype, copy=True), requires_grad=True)  # our own copy, model's dtype


def targets_for(target, n, num_classes):
    """One integer class per image from an int or a sequence; range-checked."""
    t = np.atleast_1d(np.asarray(target))
    if t.dtype.kind not in "iu":
        raise ValueError(f"target must be an integer class index or one per image, got {target!r}")
    if t.size == 1:
        t = np.repeat(t, n)
    if t.shape != (n,):
        raise ValueError(f"got {t.size} targets for {n} images")
    bad = t[(t < 0) | (t >= num_classes)]
    if bad.size:
        raise ValueError(f"class index {int(bad[0])} is out of range: the model has {num_classes} classes (0..{num_classes - 1})")
    return t.astype(np.int64)


def class_scores(logits, targets, score="logit"):
    """S_c per image (N,): the logit (the paper's choice), the softmax probability or its log."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    if logits.ndim != 2:
        raise ValueError(f"class scores need logits (N, classes), got an output of shape {tuple(logits.shape)}: "
                         "is this network without its classifier?")
    xp = logits.xp
    rows, cols = xp.arange(logits.shape[0]), xp.asarray(targets)
    if score == "logit":
        return logits[rows, cols]
    logp = F.log_softmax(logits, axis=1)[rows, cols]
    return logp if score == "log_probability" else logp.exp()


def input_gradient(model, batch, target, rule=None, score="logit"):
    """dS_c / dI for each image of ``batch`` (N, 3, H, W) and its own target class, under ``rule``
    ("gradient", "deconvnet" or "guided"; None: the rule in force).

    Each image's score depends only on that image, so one backward pass of the summed scores gives
    every image's gradient. Returns an array shaped like the batch, on the model's device.
    """
    return gradient_of_scores(model, _input_tensor(batch, model), target, rule_in_force(rule), score)


def gradient_of_scores(model, x, target, rule=None, score="logit"):
    """``input_gradient`` of a Tensor ``x`` that is already checked, on the model's device, in its
    dtype and requires its gradient (SmoothGrad's noisy copies: no check, no copy, no wait per step).
    ``rule``: None for the rule in force."""
    rule = rule_in_force(rule)
    with frozen(model):
        logits = model(x)
        t = targets_for(target, x.shape[0], logits.shape[1])
        scores = class_scores(logits, t, score)
        with mg.relu_rule(rule):
            scores.sum().backward()
    return x.grad


def layer_gradient(model, batch, layer, channel=None, top_k=1, rule=None):
    """Back-project from inside the net: the gradient of the ``top_k`` strongest activations of
    ``layer`` (within ``channel`` if given, else over all channels), per image, under ``rule``
    (None: the rule in force).

    With ``rule="deconvnet"`` and top_k=1 this is the deconvnet reconstruction of the strongest unit
    of layer n (Zeiler & Fergus 2014; paper Sec. 4). Returns (gradient, units) where ``units`` lists,
    per image, the flat indices into that layer's activation (C*H*W or features) that were used.
    """
    rule = rule_in_force(rule)
    x = _input_tensor(batch, model)
    with frozen(model):
        act = model(x, until=layer)
        xp = act.xp
        flat = act.data.reshape(act.shape[0], -1)                     # (N, C*H*W) or (N, features)
        plane = act.shape[2] * act.shape[3] if act.ndim == 4 else 1
        if channel is not None:
            if act.ndim != 4 or not 0 <= channel < act.shape[1]:
                raise ValueError(f"channel {channel} is out of range for layer {layer} of shape {tuple(act.shape)}")
            masked = xp.full_like(flat, -xp.inf)
            masked[:, channel * plane:(channel + 1) * plane] = flat[:, channel * plane:(channel + 1) * plane]
            flat = masked
        k = int(min(top_k, plane if channel is not None else flat.shape[1]))
        units = xp.argsort(-flat, axis=1)[:, :k]                      # (N, k), strongest first
        seed = xp.zeros_like(flat)
        seed[xp.arange(flat.shape[0])[:, None], units] = 1
        with mg.relu_rule(rule):
            act.backward(seed.reshape(act.shape))
    return x.grad, units
