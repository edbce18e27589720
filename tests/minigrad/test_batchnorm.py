"""Batch normalisation and global average pooling, on both tiers: float64 gradient checks, the maths
written out in NumPy, the running statistics, dtypes; a batch norm folded into the convolution before
it with a shortcut and a ReLU (``F.conv2d``'s scale, residual and relu: one op on the fast tier), and
the fast tier's 1x1 convolutions as plain GEMMs, each against the unfused ops on both tiers."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, nn, relu_rules, simple
from minigrad.fast import conv as fast_conv, relu as fast_relu

from ..conftest import away_from_zero

TIGHT = dict(rtol=1e-12, atol=1e-12)     # float64, the same maths in another order: rounding ~1e-15

BN_SHAPES = [(2, 3, 5, 4), (1, 2, 3, 7), (5, 4, 1, 1), (3, 1, 6, 6)]


def bn_inputs(rng, shape, dtype=np.float64):
    """x with a non-zero mean and non-unit spread per channel, gamma away from 0, random statistics."""
    C = shape[1]
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3, (1, C, 1, 1)) + rng.uniform(-2, 2, (1, C, 1, 1))
    gamma, beta = rng.uniform(0.5, 2, C) * rng.choice([-1, 1], C), rng.standard_normal(C)
    mean, var = rng.standard_normal(C), rng.uniform(0.3, 3, C)
    return [a.astype(dtype) for a in (x, gamma, beta, mean, var)]


def numpy_batch_norm(x, gamma, beta, mean, var, training, momentum=0.1, eps=1e-5):
    """The definition, written out: (out, new running mean, new running variance)."""
    if training:
        m, v = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        M = x.size // x.shape[1]
        new_mean, new_var = (1 - momentum) * mean + momentum * m, (1 - momentum) * var + momentum * v * M / (M - 1)
    else:
        m, v, new_mean, new_var = mean, var, mean, var
    c = (slice(None), None, None)
    return gamma[c] * (x - m[c]) / np.sqrt(v[c] + eps) + beta[c], new_mean, new_var


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_gradcheck(tier, rng, shape, training):
    if training and shape[0] * shape[2] * shape[3] == 1:
        shape = (2,) + shape[1:]
    x, gamma, beta, mean, var = bn_inputs(rng, shape)
    xt, gt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    assert mg.gradcheck(lambda x, g, b: F.batch_norm(x, g, b, mean.copy(), var.copy(), training), [xt, gt, bt])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES[:2])
def test_batch_norm_is_the_definition_and_updates_the_running_statistics(tier, rng, shape, training):
    x, gamma, beta, mean, var = bn_inputs(rng, shape)
    want, want_mean, want_var = numpy_batch_norm(x, gamma, beta, mean, var, training, momentum=0.3, eps=1e-3)
    running_mean, running_var = mean.copy(), var.copy()
    out = F.batch_norm(mg.Tensor(x), mg.Tensor(gamma), mg.Tensor(beta), running_mean, running_var, training,
                       momentum=0.3, eps=1e-3)
    np.testing.assert_allclose(out.data, want, **TIGHT)
    np.testing.assert_allclose(running_mean, want_mean, **TIGHT)         # updated in place
    np.testing.assert_allclose(running_var, want_var, **TIGHT)
    if training:                                                         # the output is normalised
        normalised = (out.data - beta[:, None, None]) / gamma[:, None, None]
        np.testing.assert_allclose(normalised.mean(axis=(0, 2, 3)), 0, atol=1e-12)
        v = x.var(axis=(0, 2, 3))
        np.testing.assert_allclose(normalised.var(axis=(0, 2, 3)), v / (v + 1e-3), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_float32_stays_float32(tier, rng, training):
    """No float64 leaks: not from eps or momentum (even given as NumPy float64 scalars), nor from the
    update of the running statistics, nor from the backward."""
    x, gamma, beta, mean, var = bn_inputs(rng, (2, 3, 4, 5), np.float32)
    xt, gt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = F.batch_norm(xt, gt, bt, mean, var, training, momentum=np.float64(0.1), eps=np.float64(1e-5))
    out.backward(np.ones(out.shape, np.float64))
    assert out.dtype == np.float32 and mean.dtype == np.float32 and var.dtype == np.float32
    assert xt.grad.dtype == gt.grad.dtype == bt.grad.dtype == np.float32


def test_batch_norm_refuses_bad_arguments(rng):
    x, gamma, beta, mean, var = bn_inputs(rng, (2, 3, 4, 4))
    xt, gt, bt = mg.Tensor(x), mg.Tensor(gamma), mg.Tensor(beta)
    with pytest.raises(ValueError, match=r"batch_norm: running_var has shape \(2,\), expected \(3,\)"):
        F.batch_norm(xt, gt, bt, mean, var[:2], False)
    with pytest.raises(TypeError, match="batch_norm: mixed dtypes"):
        F.batch_norm(xt, gt, bt, mean.astype(np.float32), var, False)
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(mg.Tensor(x[:1, :, :1, :1]), gt, bt, mean, var, True)
    with pytest.raises(ValueError, match="must be 4-D"):
        F.batch_norm(mg.Tensor(x[0]), gt, bt, mean, var, False)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 1, 1, 1), (3, 2, 7, 1)])
def test_global_avg_pool2d_gradcheck_and_value(tier, rng, shape):
    x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
    out = F.global_avg_pool2d(x)
    np.testing.assert_allclose(out.data, x.data.mean(axis=(2, 3)), **TIGHT)
    assert out.shape == shape[:2]
    assert mg.gradcheck(F.global_avg_pool2d, [x])
    x32 = mg.Tensor(x.data.astype(np.float32), requires_grad=True)
    y = F.global_avg_pool2d(x32)
    y.backward(np.ones(y.shape))
    assert y.dtype == x32.grad.dtype == np.float32


# ---- F.conv2d's scale, residual and relu: one op on the fast tier, composed on the simple one ----
def conv_bn(rng, C=3, O=4, k=3, bias=True):
    w = rng.standard_normal((O, C, k, k))
    b = rng.standard_normal(O) if bias else None
    gamma, beta = rng.uniform(0.5, 2, O) * rng.choice([-1, 1], O), rng.standard_normal(O)
    return w, b, gamma, beta, rng.standard_normal(O), rng.uniform(0.3, 3, O)


def fold(w, b, gamma, beta, mean, var, eps=1e-5):
    """The eval-mode batch norm after a convolution as (scale, shift) per output channel (models/blocks.py:
    fold_bn, written out here)."""
    scale = gamma / np.sqrt(var + eps)
    return scale, ((0 if b is None else b) - mean) * scale + beta


def conv_bn_relu(x, w, b, gamma, beta, mean, var, stride, padding, folded=False, residual=None):
    """relu(bn(conv(x)) + residual), arrays in but x (and the residual): with ``folded``, one F.conv2d
    given the batch norm's scale and shift, the residual and relu=True; else the ops one by one."""
    if folded:
        scale, shift = fold(w, b, gamma, beta, mean, var)
        return F.conv2d(x, mg.Tensor(w), shift, stride, padding, scale=scale, residual=residual, relu=True)
    out = F.batch_norm(F.conv2d(x, mg.Tensor(w), None if b is None else mg.Tensor(b), stride, padding),
                       mg.Tensor(gamma), mg.Tensor(beta), mean, var, False)
    return F.relu(out if residual is None else out + residual)


def folded_and_unfolded(x, arrays, stride, padding, g, rule="gradient", residual=None, dtype=np.float64):
    """{(tier, folded): (out, dx, out's Tensor)} for both tiers, folded and not, under ``rule``."""
    results = {}
    for tier in ("fast", "simple"):
        for folded in (True, False):
            with mg.use_ops(tier):
                xt = mg.Tensor(x.astype(dtype), requires_grad=True)
                r = None if residual is None else residual(xt)
                out = conv_bn_relu(xt, *(None if a is None else a.astype(dtype) for a in arrays), stride,
                                   padding, folded, r)
                with mg.relu_rule(rule):
                    out.backward(g.astype(dtype))
                results[tier, folded] = (out.data, xt.grad, out)
    return results


def assert_all_equal(results):
    want = results["simple", False]
    for key, got in results.items():
        for a, b in zip(got[:2], want[:2]):
            np.testing.assert_allclose(a, b, **TIGHT, err_msg=str(key))


@pytest.mark.parametrize("rule", relu_rules.RULES)
@pytest.mark.parametrize("k,stride,padding,bias", [(3, 1, 1, True), (3, 2, 1, False), (1, 1, 0, False),
                                                   (1, 2, 0, True), (7, 2, 3, False)])
def test_folded_conv_bn_relu_equals_unfolded(rng, rule, k, stride, padding, bias):
    """Inference: ``F.conv2d(x, w, shift, scale=scale, relu=True)`` runs conv + BN + ReLU as ONE fast
    convolution straight from x, and on the simple tier as the convolution, the scale, the shift and
    the ReLU op one after the other; forward and input gradient equal the unfolded ops on both tiers,
    float64, under every ReLU rule."""
    x = rng.standard_normal((2, 3, 11, 10))
    arrays = conv_bn(rng, k=k, bias=bias)
    g = rng.standard_normal(conv_bn_relu(mg.Tensor(x), *arrays, stride, padding).shape)
    results = folded_and_unfolded(x, arrays, stride, padding, g, rule)
    out = results["fast", True][2]
    assert out._op is fast_conv.Conv2d and out._ctx.relu and out._ctx.scale is not None
    assert results["simple", True][2]._op is simple.ReLU                        # composed: the rule's own code
    assert_all_equal(results)


def test_scale_needs_weights_and_bias_without_gradient(rng):
    """A folded batch norm is for inference: with scale=, weights or a bias that need a gradient are
    refused in one line on both tiers; under no_grad they are fine."""
    w, b, *_ = conv_bn(rng)
    x = mg.Tensor(rng.standard_normal((1, 3, 5, 5)))
    for tier in ("fast", "simple"):
        with mg.use_ops(tier):
            for wt, bt in ((mg.Tensor(w, requires_grad=True), None), (mg.Tensor(w), mg.Tensor(b, requires_grad=True))):
                with pytest.raises(ValueError, match="conv2d: scale= folds a batch norm for inference"):
                    F.conv2d(x, wt, bt, 1, 1, scale=np.ones(4))
                with mg.no_grad():
                    assert F.conv2d(x, wt, bt, 1, 1, scale=np.ones(4)).shape == (1, 4, 5, 5)
            with pytest.raises(ValueError, match=r"conv2d: scale has shape \(3,\), expected \(4,\)"):
                F.conv2d(x, mg.Tensor(w), None, 1, 1, scale=np.ones(3))
            with pytest.raises(ValueError, match=r"conv2d: residual must be a Tensor of the output's shape"):
                F.conv2d(x, mg.Tensor(w), None, 1, 1, residual=mg.Tensor(np.ones((1, 4, 3, 3))))


@pytest.mark.parametrize("rule", relu_rules.RULES)
@pytest.mark.parametrize("path,k,C,O", [("im2col", 3, 3, 4), ("im2col", 3, 16, 8), ("winograd", 3, 3, 4),
                                        ("winograd", 3, 16, 8), ("pointwise", 1, 3, 4), ("pointwise", 1, 48, 40)])
def test_fold_whatever_the_sizes_scale_in_the_output_pass(rng, monkeypatch, rule, path, k, C, O):
    """The scale is applied per output channel in the pass that finishes the convolution's output (the
    weights are not scaled), on each path (im2col, Winograd, 1x1 GEMM). Backwards it goes onto the
    weights when they are the smaller (C=3: w.size <= g.size), else onto the gradient after the ReLU's
    rule (C=16, 48: the weights outnumber the output; gamma has both signs, which the deconvnet rule
    would notice if the order were wrong). Forward and input gradient equal the simple tier, float64."""
    monkeypatch.setattr(fast_conv, "WINOGRAD_MIN_CHANNELS", 1 if path == "winograd" else 0)
    monkeypatch.setattr(fast_conv, "WINOGRAD_MIN_TILES", 0)
    shape = (2, C, 6, 5) if C == 3 else (1, C, 3, 4)
    x = rng.standard_normal(shape)
    arrays = conv_bn(rng, C=C, O=O, k=k)
    g = rng.standard_normal((shape[0], O) + shape[2:])
    results = folded_and_unfolded(x, arrays, 1, k // 2, g, rule)
    out = results["fast", True][2]
    assert out._op is fast_conv.Conv2d and out._ctx.scale is not None
    assert out._ctx.winograd == (path == "winograd") and out._ctx.pointwise == (path == "pointwise")
    assert (arrays[0].size > g.size) == (C > 3)
    assert_all_equal(results)


def test_folded_scale_float32_error(rng):
    """Float32 against the simple tier in float64, relative to the largest value, a 3x3 conv + BN + ReLU
    at 64 channels (Winograd, the scale in its output transform) and a 1x1 at 256 -> 64: measured
    forward 1.8e-7 and 3.0e-7, input gradient 4.3e-7 and 2.4e-7 (bound 5e-6); the 3x3 one by Winograd,
    the 1x1 one by plain GEMMs."""
    for C, O, k, size in ((64, 64, 3, 28), (256, 64, 1, 14)):
        x = rng.standard_normal((1, C, size, size))
        w, *rest = conv_bn(rng, C=C, O=O, k=k)
        arrays = (w / np.sqrt(C * k * k), *rest)
        g = rng.standard_normal((1, O, size, size))
        got = folded_and_unfolded(x, arrays, 1, k // 2, g, dtype=np.float32)["fast", True]
        want = folded_and_unfolded(x, arrays, 1, k // 2, g)["simple", False]
        ctx = got[2]._ctx
        assert ctx.scale is not None and ctx.winograd == (k == 3) and ctx.pointwise == (k == 1)
        assert got[0].dtype == got[1].dtype == np.float32
        errs = [np.abs(a - b).max() / np.abs(b).max() for a, b in zip(got[:2], want[:2])]
        assert max(errs) <= 5e-6, errs


def test_folded_path_under_no_grad(rng):
    arrays = conv_bn(rng)
    x = mg.Tensor(rng.standard_normal((2, 3, 7, 6)))
    outs = {}
    with mg.no_grad():
        for tier in ("fast", "simple"):
            with mg.use_ops(tier):
                outs[tier] = conv_bn_relu(x, *arrays, 1, 1, folded=True).data
    np.testing.assert_allclose(outs["fast"], outs["simple"], **TIGHT)


@pytest.mark.parametrize("stride", [1, 2, (3, 2)])
@pytest.mark.parametrize("relu", [False, True])
def test_pointwise_gemm_equals_im2col(rng, monkeypatch, stride, relu):
    """A 1x1 unpadded convolution by plain GEMMs on the input equals the same by im2col, forward and
    every gradient, with the ReLU fused, under the guided rule (float64)."""
    x, w, b = rng.standard_normal((3, 5, 9, 8)), rng.standard_normal((4, 5, 1, 1)), rng.standard_normal(4)
    g = rng.standard_normal((3, 4) + F.conv2d(mg.Tensor(x), mg.Tensor(w), None, stride).shape[2:])
    results = {}
    for gemm in (True, False):
        monkeypatch.setattr(fast_conv, "POINTWISE_GEMM", gemm)
        xt, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, w, b))
        with mg.use_ops("fast"), mg.relu_rule("guided"):
            out = F.conv2d(xt, wt, bt, stride, relu=relu)
            out.backward(g)
        assert out._ctx.pointwise == gemm
        results[gemm] = (out.data, xt.grad, wt.grad, bt.grad)
    for got, want in zip(results[True], results[False]):
        np.testing.assert_allclose(got, want, **TIGHT)


@pytest.mark.parametrize("rule", relu_rules.RULES)
@pytest.mark.parametrize("stride", [1, 2])
def test_residual_fuses_into_a_1x1_conv(rng, rule, stride):
    """Inference on the fast tier (CPU): a bottleneck's conv3 + bn3 + shortcut + ReLU, asked of one
    ``F.conv2d(..., scale=, residual=, relu=True)``, run as ONE op: the 1x1 convolution with the batch
    norm's scale, the shortcut added and the ReLU applied in the pass that finishes each block of its
    GEMM; the shortcut (the identity, or a folded 1x1 stride-2 convolution + BN) receives the gradient
    leaving the ReLU. Forward and input gradient equal the unfused ops on both tiers (float64) under
    every ReLU rule."""
    C, O = 6, 6 if stride == 1 else 8
    x = rng.standard_normal((2, C, 7, 6))
    arrays = conv_bn(rng, C=C, O=O, k=1, bias=False)
    down = conv_bn(rng, C=C, O=O, k=1, bias=False)

    def shortcut(xt):
        if stride == 1:
            return xt
        scale, shift = fold(*down)
        return F.conv2d(xt, mg.Tensor(down[0]), shift, stride, scale=scale)
    g = rng.standard_normal(F.conv2d(mg.Tensor(x), mg.Tensor(arrays[0]), None, stride).shape)
    results = folded_and_unfolded(x, arrays, stride, 0, g, rule, residual=shortcut)
    out = results["fast", True][2]
    assert out._op is fast_conv.Conv2d and out._ctx.relu and out._ctx.scale is not None and len(out._inputs) == 4
    assert_all_equal(results)


def test_residual_float32_error_and_where_it_is_added_apart(rng):
    """Float32 (a 1x1 256 -> 256 at 14x14 + BN + identity shortcut + ReLU) against the simple tier in
    float64, relative to the largest value: measured 4.5e-7 forward, 3.3e-7 input gradient (bound
    5e-6). A 3x3 convolution with a residual runs as the convolution, then an addition and a ReLU, on
    the fast tier too, equal to the simple tier."""
    x = rng.standard_normal((1, 256, 14, 14))
    w, *rest = conv_bn(rng, C=256, O=256, k=1, bias=False)
    g = rng.standard_normal((1, 256, 14, 14))
    got = folded_and_unfolded(x, (w / 16, *rest), 1, 0, g, residual=lambda xt: xt, dtype=np.float32)["fast", True]
    want = folded_and_unfolded(x, (w / 16, *rest), 1, 0, g, residual=lambda xt: xt)["simple", False]
    assert got[2]._op is fast_conv.Conv2d and len(got[2]._inputs) == 4
    assert got[0].dtype == got[1].dtype == np.float32
    errs = [np.abs(a - b).max() / np.abs(b).max() for a, b in zip(got[:2], want[:2])]
    assert max(errs) <= 5e-6, errs
    x3 = rng.standard_normal((1, 3, 5, 5))
    arrays = conv_bn(rng, k=3)
    results = folded_and_unfolded(x3, arrays, 1, 1, rng.standard_normal((1, 4, 5, 5)),
                                  residual=lambda xt: mg.Tensor(np.ones((1, 4, 5, 5))))
    out = results["fast", True][2]
    assert out._op is fast_relu.ReLU and out._inputs[0]._op is F.Add          # added apart, then the ReLU
    assert_all_equal(results)


# ---- modules: BatchNorm2d and its buffers, GlobalAvgPool2d, MaxPool2d with padding --------------
def test_batch_norm_module_buffers_state_dict_and_modes(rng):
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(3, 2, 1), nn.GlobalAvgPool2d())
    assert [n for n, _ in net.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert list(net.state_dict()) == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                      "1.num_batches_tracked"]             # torchvision's order and names
    bn = net[1]
    x = mg.Tensor(away_from_zero(rng, (4, 3, 6, 6), dtype=np.float32))
    assert net(x).shape == (4, 4)
    assert int(bn.num_batches_tracked) == 1 and not np.all(bn.running_mean == 0)
    before = bn.running_mean.copy()
    net.eval()(x)                                                          # eval: nothing tracked
    assert int(bn.num_batches_tracked) == 1 and np.array_equal(bn.running_mean, before)

    state = {k: np.array(v) for k, v in net.state_dict().items()}
    state["1.running_var"] = rng.uniform(1, 2, 4).astype(np.float64)      # converted to the buffer's dtype
    other = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(3, 2, 1), nn.GlobalAvgPool2d()).load_state_dict(state)
    ob = other[1]
    assert ob.running_var.dtype == np.float32 and ob.running_mean is not state["1.running_mean"]
    np.testing.assert_array_equal(ob.running_var, state["1.running_var"].astype(np.float32))
    assert int(ob.num_batches_tracked) == 1 and ob.num_batches_tracked.dtype == np.int64
    other(x)                                                               # training: updates its own copy
    np.testing.assert_array_equal(state["1.running_mean"], before)
    with pytest.raises(ValueError, match=r"1.running_mean has shape \(3,\), expected \(4,\)"):
        other.load_state_dict(dict(state, **{"1.running_mean": np.zeros(3)}))
    with pytest.raises(KeyError, match="missing \\['1.num_batches_tracked'\\]"):
        other.load_state_dict({k: v for k, v in state.items() if k != "1.num_batches_tracked"})


def test_module_to_dtype_converts_parameters_and_statistics_not_counters():
    bn = nn.BatchNorm2d(3).to(dtype=np.float64)
    assert bn.weight.dtype == bn.running_mean.dtype == bn.running_var.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    assert dict(bn.named_buffers())["running_var"] is bn.running_var     # attribute and registry agree
    assert "padding=1" in repr(nn.MaxPool2d(3, 2, 1)) and repr(nn.BatchNorm2d(3)) == \
        "BatchNorm2d(3, eps=1e-05, momentum=0.1)"
