"""The two ops tiers (simple.py, fast/) compute the same thing: every heavy op forward and backward,
under every ReLU rule, and a small VGG-style net end to end, equal in float64 to 1e-12 (the two add
the same products in other orders: float64 rounding, about 1e-15 of values of order 10). And the
switch that selects a tier refuses anything else."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, nn, relu_rules
from minigrad.tiers import TIERS

from ..conftest import away_from_zero
from .test_network_ops import CONV_CASES, POOL_CASES

TOL = dict(rtol=1e-12, atol=1e-12)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def on_both_tiers(fn):
    """{tier: fn()} with each tier in force."""
    results = {}
    for name in TIERS:
        with mg.use_ops(name):
            results[name] = fn()
    return results


def assert_tiers_equal(results):
    simple, fast = results["simple"], results["fast"]
    assert len(simple) == len(fast)
    for a, b in zip(simple, fast):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("xshape,wshape,stride,padding", CONV_CASES)
def test_conv2d_forward_and_backward_equal(rng, xshape, wshape, stride, padding, relu):
    O, kh, kw = wshape
    x, w, b = rng.standard_normal(xshape), rng.standard_normal((O, xshape[1], kh, kw)), rng.standard_normal(O)
    rules = relu_rules.RULES if relu else ("gradient",)
    for rule in rules:
        def run():
            xt, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, w, b))
            out = F.conv2d(xt, wt, bt, stride, padding)
            out = F.relu(out) if relu else out
            g = np.random.default_rng(7).standard_normal(out.shape)
            with mg.relu_rule(rule):
                out.backward(g)
            return out.data, xt.grad, wt.grad, bt.grad
        assert_tiers_equal(on_both_tiers(run))


@pytest.mark.parametrize("xshape,kernel,stride,padding", POOL_CASES)
def test_max_pool2d_forward_and_backward_equal_with_ties(rng, xshape, kernel, stride, padding):
    """Values from {0, 1, 2}: many ties, which both tiers give to the first maximum of a window."""
    x = rng.integers(0, 3, xshape).astype(np.float64)

    def run():
        xt = mg.Tensor(x, requires_grad=True)
        out = F.max_pool2d(xt, kernel, stride, padding)
        out.backward(np.random.default_rng(7).standard_normal(out.shape))
        return out.data, xt.grad
    assert_tiers_equal(on_both_tiers(run))


@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_relu_forward_and_backward_equal(rng, rule):
    x, g = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 5, 4))

    def run():
        xt = mg.Tensor(x, requires_grad=True)
        out = F.relu(xt)
        with mg.relu_rule(rule):
            out.backward(g)
        return out.data, xt.grad
    assert_tiers_equal(on_both_tiers(run))


def small_vgg(dtype):
    """A VGG-style stack: two blocks of 3x3 convolutions + ReLU + 2x2 pooling, then two linear layers."""
    mg.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(6 * 3 * 2, 8), nn.ReLU(), nn.Linear(8, 5))
    for p in net.parameters():
        p.data = (p.data + 0.05).astype(dtype)                        # non-zero biases too
    return net


@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_small_vgg_end_to_end_equal(rng, rule):
    """The input gradient of a class score (what saliency maps are made of), float64, every rule;
    the observers see the same ReLU arrays on both tiers."""
    x = rng.standard_normal((2, 3, 13, 10))

    def run():
        net, xt, seen = small_vgg(np.float64), mg.Tensor(x, requires_grad=True), []
        logits = net(xt)
        with mg.relu_rule(rule), relu_rules.observe(lambda *arrays: seen.append(arrays)):
            logits[:, 3].sum().backward()
        assert len(seen) == 4                                         # one per ReLU
        return [logits.data, xt.grad] + [a for arrays in seen for a in arrays]
    assert_tiers_equal(on_both_tiers(run))


def test_small_vgg_stays_float32(tier, rng):
    net = small_vgg(np.float32)
    xt = mg.Tensor(rng.standard_normal((2, 3, 13, 10)).astype(np.float32), requires_grad=True)
    logits = net(xt)
    with mg.relu_rule("guided"):
        logits[:, 1].sum().backward()
    assert logits.dtype == np.float32 and xt.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in net.parameters())


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_and_global_avg_pool_equal(rng, training):
    x, gamma, beta = rng.standard_normal((3, 4, 5, 6)) * 2 + 1, rng.standard_normal(4), rng.standard_normal(4)
    mean, var, g = rng.standard_normal(4), rng.uniform(0.5, 2, 4), rng.standard_normal((3, 4))

    def run():
        xt, gt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, gamma, beta))
        running_mean, running_var = mean.copy(), var.copy()
        out = F.global_avg_pool2d(F.batch_norm(xt, gt, bt, running_mean, running_var, training) ** 2)
        out.backward(g)
        return out.data, xt.grad, gt.grad, bt.grad, running_mean, running_var
    assert_tiers_equal(on_both_tiers(run))


class TinyResNet(nn.Module):
    """ResNet's pieces at toy size: conv 7x7/2 pad 3, BN, ReLU, max pool 3x3/2 pad 1; a basic block
    (3x3 conv, BN, ReLU, 3x3 conv, BN, + identity, ReLU); a block with stride 2 whose shortcut is a
    1x1 stride-2 conv + BN; global average pooling; a linear layer. Every ReLU one module (as
    torchvision's blocks reuse theirs)."""

    def __init__(self, dtype=np.float64, seed=3):
        super().__init__()
        mg.manual_seed(seed)
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(4)
        self.relu, self.maxpool = nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv3, self.bn3 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv4, self.bn4 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(6)
        self.conv5, self.bn5 = nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)
        self.down, self.down_bn = nn.Conv2d(4, 6, 1, stride=2, bias=False), nn.BatchNorm2d(6)
        self.gap, self.fc = nn.GlobalAvgPool2d(), nn.Linear(6, 5)
        rng = np.random.default_rng(seed)
        for name, m in self.named_modules():                          # random affine and statistics
            if isinstance(m, nn.BatchNorm2d):
                C = m.num_features
                m.weight.data, m.bias.data = rng.uniform(0.5, 1.5, C), rng.standard_normal(C) * 0.3
                m.running_mean, m.running_var = rng.standard_normal(C) * 0.3, rng.uniform(0.5, 2, C)
        self.fc.bias.data = rng.standard_normal(5)
        self.to(dtype=dtype)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        y = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(x)))))
        x = self.relu(x + y)                                          # the residual addition
        y = self.bn5(self.conv5(self.relu(self.bn4(self.conv4(x)))))
        x = self.relu(self.down_bn(self.down(x)) + y)
        return self.fc(self.gap(x))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_tiny_resnet_end_to_end_equal(rng, rule, training):
    """Logits, the input gradient of a class score and (training) every parameter's gradient and the
    running statistics: equal on both tiers, under every rule (the batch norms unfolded: a ResNet's
    folded blocks are tested in tests/models/test_fusion.py)."""
    x = rng.standard_normal((2, 3, 21, 18))

    def run():
        net = TinyResNet().train(training)
        if not training:
            net.requires_grad_(False)
        xt, seen = mg.Tensor(x, requires_grad=True), []
        logits = net(xt)
        with mg.relu_rule(rule), relu_rules.observe(lambda *arrays: seen.append(arrays)):
            logits[:, 3].sum().backward()
        assert len(seen) == 5                                         # every ReLU call, reused module or not
        grads = [p.grad for p in net.parameters()] if training else []
        return [logits.data, xt.grad] + grads + [b for _, b in net.named_buffers()]
    assert_tiers_equal(on_both_tiers(run))


def test_the_simple_tier_calls_the_rule_function(rng, monkeypatch):
    """On the simple tier the ReLU backward runs relu_rules.deconvnet itself (a breakpoint there
    stops once per ReLU); the fast tier's kernels apply the same rule by its code."""
    calls = []
    original = relu_rules.deconvnet
    monkeypatch.setattr(relu_rules, "deconvnet", lambda *args: calls.append(1) or original(*args))
    x = rng.standard_normal((1, 3, 13, 10))
    for name, expected in (("simple", 4), ("fast", 0)):
        with mg.use_ops(name), mg.relu_rule("deconvnet"):
            xt = mg.Tensor(x, requires_grad=True)
            small_vgg(np.float64)(xt)[:, 0].sum().backward()
        assert len(calls) == expected, name
        calls.clear()


def test_vgg_forward_returns_the_conv_and_relu_activations(tier, rng):
    """Asking for a conv and its ReLU gives both (the conv then runs unfused: tests/models/test_fusion.py)."""
    from models import vgg
    model = vgg.build({"blocks": [[4, 4]], "fc": None, "input_size": 8}, seed=0).eval()
    acts = model(mg.Tensor(rng.standard_normal((1, 3, 8, 8)).astype(np.float32)), until=["conv1_1", "relu1_1"])
    conv, relu = acts["conv1_1"].data, acts["relu1_1"].data
    assert (conv < 0).any()
    np.testing.assert_array_equal(relu, np.maximum(conv, 0))


def test_use_ops_switches_restores_and_refuses(rng):
    start = mg.current_ops()
    assert start in TIERS
    with mg.use_ops("simple"):
        assert mg.current_ops() == "simple"
        with mg.use_ops("fast"):
            assert mg.current_ops() == "fast"
        assert mg.current_ops() == "simple"
    assert mg.current_ops() == start
    with pytest.raises(ValueError, match="use_ops: unknown ops tier 'turbo'; choose one of simple, fast"):
        with mg.use_ops("turbo"):
            pass
    assert mg.current_ops() == start


def _python(code, tier):
    env = dict(os.environ, MINIGRAD_OPS=tier, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_environment_variable_selects_and_refuses():
    code = ("import sys, numpy as np, minigrad as mg; from minigrad import functional as F; "
            "x = mg.Tensor(np.ones((1, 1, 4, 4))); F.max_pool2d(F.relu(F.conv2d(x, x[:, :, :3, :3])), 2); "
            "print(mg.current_ops(), 'numba' in sys.modules)")
    simple = _python(code, "simple")
    assert simple.returncode == 0 and simple.stdout.split() == ["simple", "False"], simple.stderr
    bad = _python("import minigrad", "turbo")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1] == \
        "ValueError: MINIGRAD_OPS: unknown ops tier 'turbo'; choose one of simple, fast"
