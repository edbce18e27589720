"""Where the networks ask for fused ops (``F.conv2d``'s scale, residual and relu), and that asking
changes nothing but the speed: a VGG runs each convolution with the ReLU after it as one call unless the
convolution's own output is wanted (then each is computed once); a ResNet in eval mode, its weights
without gradient, folds each batch norm into its convolution (``fold_bn``) and gives the shortcut and
the ReLU to the block's last one, except in the blocks an ``until`` reaches into. Float64, folded
against unfolded and the simple tier against the fast one, to 1e-12, under every ReLU rule."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, nn, relu_rules, simple
from minigrad.fast import batchnorm as fast_bn, conv as fast_conv
from minigrad.tiers import TIERS
from models import blocks, resnet, vgg
from saliency.gradients import frozen

TIGHT = dict(rtol=1e-12, atol=1e-12)      # float64, the same maths in another order


def count_calls(monkeypatch, cls):
    """A list that gets one entry per ``cls.forward`` call."""
    calls, forward = [], cls.forward
    monkeypatch.setattr(cls, "forward", staticmethod(lambda ctx, *a, **k: calls.append(1) or forward(ctx, *a, **k)))
    return calls


# ---- VGG: a convolution and its ReLU as one call -----------------------------------------------
def small_vgg():
    model = vgg.build({"blocks": [[4, 4], [6]], "fc": [8], "num_classes": 3, "input_size": 8}, seed=0)
    return model.to(dtype=np.float64).eval()


@pytest.mark.parametrize("tier", TIERS)
def test_vgg_fuses_conv_and_relu_unless_the_conv_is_asked_for(rng, monkeypatch, tier):
    """``model(x)``: each convolution returns its ReLU's output (fast: one Conv2d with relu=True).
    ``until=["conv1_2", "relu1_2"]``: that convolution runs alone and the ReLU op after it, each once;
    the others stay fused. The answers equal the layers run one by one."""
    model, x = small_vgg(), mg.Tensor(rng.standard_normal((2, 3, 8, 8)))
    conv_op = fast_conv.Conv2d if tier == "fast" else simple.Conv2d
    with mg.use_ops(tier):
        convs = count_calls(monkeypatch, conv_op)
        relu = model(x, until="relu1_2")
        assert len(convs) == 2
        assert relu._op is (fast_conv.Conv2d if tier == "fast" else simple.ReLU)
        convs.clear()
        acts = model(x, until=["conv1_2", "relu1_2", "relu2_1"])
        assert len(convs) == 3                                          # conv1_2 once, not twice
        assert acts["conv1_2"]._op is conv_op and (acts["conv1_2"].data < 0).any()
        assert acts["relu1_2"]._inputs[0] is acts["conv1_2"]            # the ReLU op reads it
        h = x
        for name in model.layer_names[:model.layer_names.index("relu2_1") + 1]:
            h = getattr(model, name)(h)                                 # one layer a call, unfused
            if name in acts:
                np.testing.assert_allclose(acts[name].data, h.data, **TIGHT)
        np.testing.assert_allclose(relu.data, acts["relu1_2"].data, **TIGHT)


@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_vgg_input_gradient_fused_equals_unfused_on_both_tiers(rng, rule):
    model, x = small_vgg(), rng.standard_normal((2, 3, 8, 8))
    results = []
    for tier in TIERS:
        for until in (None, [n for n in model.layer_names if n.startswith("conv")] + ["fc4"]):
            with mg.use_ops(tier), frozen(model):
                xt = mg.Tensor(x, requires_grad=True)
                out = model(xt, until=until)
                logits = out if until is None else out["fc4"]
                with mg.relu_rule(rule):
                    logits[:, 1].sum().backward()
                results.append((logits.data, xt.grad))
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_allclose(a, b, **TIGHT)


# ---- ResNet: batch norms folded, shortcut and ReLU given to the last convolution ---------------
def small_resnet(block):
    """A float64 ResNet with both block kinds' shortcuts (identity and downsample) and random batch-norm
    statistics and affines (so that folding them is not the identity), in eval mode."""
    model = resnet.build(dict(name="tiny", block=block, depths=[1, 2], widths=[4, 6], stem_width=4, stem_kernel=3,
                              stem_stride=1, maxpool=True, num_classes=5, input_size=12), seed=0)
    r = np.random.default_rng(1)
    for _, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            C = m.num_features
            m.weight.data = r.uniform(0.5, 1.5, C) * r.choice([-1, 1], C)
            m.bias.data = r.standard_normal(C) * 0.3
            m.running_mean, m.running_var = r.standard_normal(C) * 0.3, r.uniform(0.5, 2, C)
    return model.to(dtype=np.float64).eval()


def test_fold_bn_is_the_batch_norm_after_the_convolution(rng):
    conv, bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
    conv.bias.data = rng.standard_normal(4).astype(np.float32)
    bn.weight.data, bn.bias.data = (rng.standard_normal(4).astype(np.float32) for _ in range(2))
    bn.running_mean, bn.running_var = rng.standard_normal(4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    bn.eval()
    x = mg.Tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    scale, shift = blocks.fold_bn(conv, bn)
    assert scale.dtype == shift.dtype == np.float32 and scale.shape == shift.shape == (4,)
    with mg.no_grad():
        want = bn(conv(x)).data
        got = F.conv2d(x, conv.weight, shift, 1, 1, scale=scale).data
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)        # float32, of values of order 1


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_resnet_folded_equals_unfolded_on_both_tiers(rng, monkeypatch, block, rule):
    """Logits and the input gradient of a class score, folded (no batch-norm op runs; fast: the
    blocks' last convolutions take the shortcut) against unfolded (``folds`` made False), on both
    tiers. Every ReLU call runs the rule: the observers see as many on both paths."""
    model, x = small_resnet(block), rng.standard_normal((2, 3, 12, 12))
    results = {}
    for tier in TIERS:
        for fold in (True, False):
            with monkeypatch.context() as m:
                if not fold:
                    m.setattr(blocks, "folds", lambda *args: False)
                    m.setattr(resnet, "folds", lambda *args: False)
                bns = count_calls(m, simple.BatchNorm if tier == "simple" else fast_bn.BatchNorm)
                with mg.use_ops(tier), frozen(model):
                    xt, seen = mg.Tensor(x, requires_grad=True), []
                    logits = model(xt)
                    with mg.relu_rule(rule), relu_rules.observe(lambda *arrays: seen.append(1)):
                        logits[:, 2].sum().backward()
                assert (len(bns) == 0) == fold
            results[tier, fold] = (logits.data, xt.grad, len(seen))
    want = results["simple", False]
    for key, got in results.items():
        assert got[2] == want[2], key
        for a, b in zip(got[:2], want[:2]):
            np.testing.assert_allclose(a, b, **TIGHT, err_msg=str(key))


def test_resnet_unfolds_where_asked_into_and_when_training_the_weights(rng, monkeypatch):
    """``until`` inside a block runs that block (and only it) unfolded and returns the batch norm's own
    output; with the weights needing a gradient, nothing folds and every parameter gets its gradient."""
    model, x = small_resnet("bottleneck"), mg.Tensor(rng.standard_normal((1, 3, 12, 12)))
    bns = count_calls(monkeypatch, fast_bn.BatchNorm)
    with mg.use_ops("fast"), frozen(model):
        acts = model(x, until=["layer2.1.bn2", "fc"])
        assert len(bns) == 3                                            # layer2.1's three batch norms
        with mg.no_grad():
            inside = model.layer("layer2.1.bn2")(model(x, until="layer2.1.conv2"))
        np.testing.assert_allclose(acts["layer2.1.bn2"].data, inside.data, **TIGHT)
        np.testing.assert_allclose(acts["fc"].data, model(x).data, **TIGHT)
    bns.clear()
    with mg.use_ops("fast"):
        model(x).sum().backward()                                       # eval mode, weights need gradients
    assert len(bns) == sum(isinstance(m, nn.BatchNorm2d) for _, m in model.named_modules())
    assert all(p.grad is not None for p in model.parameters())


def test_resnet_folds_what_it_can_and_stops_after_the_stem(rng, monkeypatch):
    """Only ``fc`` learning: the stem and every block still fold. A batch norm put in training mode:
    its block runs unfolded (the batch's statistics), the others fold. ``until="relu"`` on a folded
    stem runs one convolution and no block."""
    model, x = small_resnet("basic"), mg.Tensor(rng.standard_normal((2, 3, 12, 12)))
    bns, convs = count_calls(monkeypatch, fast_bn.BatchNorm), count_calls(monkeypatch, fast_conv.Conv2d)
    with mg.use_ops("fast"):
        with frozen(model):
            model.fc.weight.requires_grad = model.fc.bias.requires_grad = True
            model(x).sum().backward()
            assert len(bns) == 0 and model.fc.weight.grad is not None
            model.fc.weight.requires_grad = model.fc.bias.requires_grad = False
            model.layer("layer2.1.bn1").train()
            model(x)
            assert len(bns) == 2                                         # layer2.1's bn1 and bn2
            model.layer("layer2.1.bn1").eval()
            convs.clear()
            assert model(x, until="relu").shape == (2, 4, 12, 12) and len(convs) == 1
