"""Batch normalisation and global average pooling, on both tiers: float64 gradient checks, the maths
written out in NumPy, the running statistics, dtypes; the fast tier's inference folding of a batch norm
into the convolution before it, and its 1x1 convolutions as plain GEMMs, each against the unfused path."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, nn, relu_rules
from minigrad.fast import batchnorm as fast_bn, conv as fast_conv

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


# ---- the fast tier: batch norm folded into the convolution, 1x1 convolutions as GEMMs ------------
def conv_bn(rng, C=3, O=4, k=3, bias=True):
    w = rng.standard_normal((O, C, k, k))
    b = rng.standard_normal(O) if bias else None
    gamma, beta = rng.uniform(0.5, 2, O) * rng.choice([-1, 1], O), rng.standard_normal(O)
    return w, b, gamma, beta, rng.standard_normal(O), rng.uniform(0.3, 3, O)


def conv_bn_relu(x, w, b, gamma, beta, mean, var, stride, padding, read_conv=False):
    c = F.conv2d(x, w, b, stride, padding)
    if read_conv:
        c.data                                      # read: nothing left to fold
    return c, F.relu(F.batch_norm(c, gamma, beta, mean, var, False))


@pytest.mark.parametrize("rule", relu_rules.RULES)
@pytest.mark.parametrize("k,stride,padding,bias", [(3, 1, 1, True), (3, 2, 1, False), (1, 1, 0, False),
                                                   (1, 2, 0, True), (7, 2, 3, False)])
def test_folded_conv_bn_relu_equals_unfolded(rng, monkeypatch, rule, k, stride, padding, bias):
    """Inference, nothing but the input needing a gradient: on the fast tier conv + BN + ReLU run as ONE
    fused convolution with the BN folded into its weights; forward and input gradient equal, float64,
    the unfolded path (the convolution's output read first) and the simple tier, under every ReLU rule."""
    x = rng.standard_normal((2, 3, 11, 10))
    w, b, gamma, beta, mean, var = (None if a is None else mg.Tensor(a) for a in conv_bn(rng, k=k, bias=bias))
    g = rng.standard_normal(conv_bn_relu(mg.Tensor(x), w, b, gamma, beta, mean.data, var.data, stride,
                                         padding)[1].shape)
    results = {}
    for name, read in (("folded", False), ("unfolded", True), ("simple", False)):
        with mg.use_ops("simple" if name == "simple" else "fast"):
            xt = mg.Tensor(x, requires_grad=True)
            c, out = conv_bn_relu(xt, w, b, gamma, beta, mean.data, var.data, stride, padding, read)
            if name == "folded":                    # one op: a fast convolution with the ReLU fused
                assert out._op is fast_conv.Conv2d and out._ctx.relu and out._inputs[0] is xt
                assert c._later is not None         # the convolution's own output: not computed
            with mg.relu_rule(rule):
                out.backward(g)
            results[name] = (out.data, xt.grad, c.data)
    for name in ("unfolded", "simple"):
        for got, want in zip(results["folded"], results[name]):
            np.testing.assert_allclose(got, want, **TIGHT)


def test_no_fold_when_the_weights_or_the_batch_norm_need_a_gradient(rng):
    """Training the weights, or gamma and beta, in eval mode: the convolution and the batch norm run
    apart, and every gradient equals the simple tier's."""
    x = rng.standard_normal((2, 3, 6, 5))
    arrays = conv_bn(rng)
    for trainable in ("conv", "bn"):
        results = {}
        for tier in ("fast", "simple"):
            with mg.use_ops(tier):
                w, b, gamma, beta = (mg.Tensor(a, requires_grad=(i < 2) == (trainable == "conv"))
                                     for i, a in enumerate(arrays[:4]))
                xt = mg.Tensor(x, requires_grad=True)
                c, out = conv_bn_relu(xt, w, b, gamma, beta, *arrays[4:], 1, 1)
                assert not (tier == "fast" and out._op is fast_conv.Conv2d)
                out.backward(np.ones(out.shape))
                results[tier] = [xt.grad] + [t.grad for t in (w, b, gamma, beta) if t.requires_grad]
        for got, want in zip(*results.values()):
            np.testing.assert_allclose(got, want, **TIGHT)


@pytest.mark.parametrize("rule", relu_rules.RULES)
@pytest.mark.parametrize("path,k,C,O", [("im2col", 3, 3, 4), ("im2col", 3, 16, 8), ("winograd", 3, 3, 4),
                                        ("winograd", 3, 16, 8), ("pointwise", 1, 3, 4), ("pointwise", 1, 48, 40)])
def test_fold_whatever_the_sizes_scale_in_the_output_pass(rng, monkeypatch, rule, path, k, C, O):
    """The batch norm folds whatever the weights' size: its scale is applied per output channel in the
    pass that finishes the convolution's output (the weights are not scaled), on each path (im2col,
    Winograd, 1x1 GEMM). Backwards the scale goes onto the weights when they are the smaller (C=3:
    w.size <= g.size), else onto the gradient after the ReLU's rule (C=16, 48: the weights outnumber
    the output; gamma has both signs, which the deconvnet rule would notice if the order were wrong).
    Forward and input gradient equal the simple tier, float64."""
    monkeypatch.setattr(fast_conv, "WINOGRAD_MIN_CHANNELS", 1 if path == "winograd" else 0)
    monkeypatch.setattr(fast_conv, "WINOGRAD_MIN_TILES", 0)
    shape = (2, C, 6, 5) if C == 3 else (1, C, 3, 4)
    x = rng.standard_normal(shape)
    w, b, gamma, beta, mean, var = conv_bn(rng, C=C, O=O, k=k)
    g = rng.standard_normal((shape[0], O) + shape[2:])
    results = {}
    for tier in ("fast", "simple"):
        with mg.use_ops(tier):
            xt = mg.Tensor(x, requires_grad=True)
            c, out = conv_bn_relu(xt, *(mg.Tensor(a) for a in (w, b, gamma, beta)), mean, var, 1, k // 2)
            with mg.relu_rule(rule):
                out.backward(g)
            if tier == "fast":
                assert c._later is not None and out._op is fast_conv.Conv2d and out._ctx.scale is not None
                assert out._ctx.winograd == (path == "winograd") and out._ctx.pointwise == (path == "pointwise")
                assert (w.size > g.size) == (C > 3)
            results[tier] = (out.data, xt.grad)
    for got, want in zip(results["fast"], results["simple"]):
        np.testing.assert_allclose(got, want, **TIGHT)


def test_folded_scale_float32_error(rng):
    """Float32 against the simple tier in float64, relative to the largest value, a 3x3 conv + BN + ReLU
    at 64 channels (Winograd, the scale in its output transform) and a 1x1 at 256 -> 64: measured
    forward 1.8e-7 and 3.0e-7, input gradient 4.3e-7 and 2.4e-7 (bound 5e-6). The fast tier did fold:
    conv + BN + ReLU ran as one convolution with the scale, straight from the input, the convolution's
    own output never computed; the 3x3 one by Winograd, the 1x1 one by plain GEMMs."""
    for C, O, k, size in ((64, 64, 3, 28), (256, 64, 1, 14)):
        x = rng.standard_normal((1, C, size, size))
        w, b, gamma, beta, mean, var = conv_bn(rng, C=C, O=O, k=k)
        w /= np.sqrt(C * k * k)
        g = rng.standard_normal((1, O, size, size))
        got, want = {}, {}
        for tier, dtype, store in (("fast", np.float32, got), ("simple", np.float64, want)):
            with mg.use_ops(tier):
                xt = mg.Tensor(x.astype(dtype), requires_grad=True)
                c, out = conv_bn_relu(xt, *(mg.Tensor(a.astype(dtype)) for a in (w, b, gamma, beta)),
                                      mean.astype(dtype), var.astype(dtype), 1, k // 2)
                out.backward(g.astype(dtype))
                folded = (out._op is fast_conv.Conv2d and out._ctx.scale is not None and out._ctx.relu
                          and out._inputs[0] is xt and c._later is not None)
                store.update(out=out.data, dx=xt.grad, folded=folded, ctx=out._ctx)
        assert got["folded"] and not want["folded"]
        assert got["ctx"].winograd == (k == 3) and got["ctx"].pointwise == (k == 1)
        assert got["out"].dtype == got["dx"].dtype == np.float32
        errs = [np.abs(got[n] - want[n]).max() / np.abs(want[n]).max() for n in ("out", "dx")]
        assert max(errs) <= 5e-6, errs


def test_folded_path_under_no_grad_and_in_float32(rng):
    w, b, gamma, beta, mean, var = conv_bn(rng)
    x = rng.standard_normal((2, 3, 7, 6))
    with mg.no_grad():
        with mg.use_ops("fast"):
            c, folded = conv_bn_relu(mg.Tensor(x), *(mg.Tensor(a) for a in (w, b, gamma, beta)), mean, var, 1, 1)
            assert c._later is not None             # folded: the batch norm never read the convolution
        with mg.use_ops("simple"):
            plain = conv_bn_relu(mg.Tensor(x), *(mg.Tensor(a) for a in (w, b, gamma, beta)), mean, var, 1, 1)[1]
        np.testing.assert_allclose(folded.data, plain.data, **TIGHT)
    with mg.use_ops("fast"):
        xt = mg.Tensor(x.astype(np.float32), requires_grad=True)
        out = conv_bn_relu(xt, *(mg.Tensor(a.astype(np.float32)) for a in (w, b, gamma, beta)),
                           mean.astype(np.float32), var.astype(np.float32), 1, 1)[1]
        out.backward(np.ones(out.shape, np.float32))
    assert out._op is fast_conv.Conv2d and out.dtype == xt.grad.dtype == np.float32


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
            out = F.conv2d(xt, wt, bt, stride)
            out = F.relu(out) if relu else out
            out.backward(g)
        assert out._ctx.pointwise == gemm
        results[gemm] = (out.data, xt.grad, wt.grad, bt.grad)
    for got, want in zip(results[True], results[False]):
        np.testing.assert_allclose(got, want, **TIGHT)


def bottleneck_tail(x, w3, bn3, shortcut, stride, order):
    """relu(bn3(conv3(x)) + shortcut(x)), conv3 1x1 with this stride: a bottleneck's last layers."""
    main = F.batch_norm(F.conv2d(x, w3, None, stride), *bn3, False)
    r = shortcut(x)
    return main, F.relu(main + r if order == "main+shortcut" else r + main)


@pytest.mark.parametrize("rule", relu_rules.RULES)
@pytest.mark.parametrize("stride,order", [(1, "main+shortcut"), (2, "main+shortcut"), (1, "shortcut+main")])
def test_residual_add_fuses_into_the_last_1x1_conv(rng, rule, stride, order):
    """Inference on the fast tier (CPU): a bottleneck's conv3 + bn3 + shortcut + ReLU run as ONE op,
    the 1x1 convolution with the batch norm's scale, the shortcut added and the ReLU applied in the
    pass that finishes each block of its GEMM; the shortcut (the identity, or a 1x1 stride-2
    convolution + BN: itself folded) receives the gradient leaving the ReLU. Forward and input
    gradient equal the simple tier (float64) under every ReLU rule."""
    C, O = 6, 6 if stride == 1 else 8
    x = rng.standard_normal((2, C, 7, 6))
    w3, *_, = conv_bn(rng, C=C, O=O, k=1, bias=False)
    bn3 = conv_bn(rng, C=C, O=O, k=1)[2:]
    wd, *_ = conv_bn(rng, C=C, O=O, k=1, bias=False)
    bnd = conv_bn(rng, C=C, O=O, k=1)[2:]

    def tensors(arrays):
        return [mg.Tensor(a) for a in arrays[:2]] + list(arrays[2:])
    results = {}
    for tier in ("fast", "simple"):
        with mg.use_ops(tier):
            xt = mg.Tensor(x, requires_grad=True)
            shortcut = (lambda x: x) if stride == 1 else \
                (lambda x: F.batch_norm(F.conv2d(x, mg.Tensor(wd), None, stride), *tensors(bnd), False))
            main, out = bottleneck_tail(xt, mg.Tensor(w3), tensors(bn3), shortcut, stride, order)
            g = rng.standard_normal(out.shape) if tier == "fast" else g
            with mg.relu_rule(rule):
                out.backward(g)
            if tier == "fast":
                assert out._op is fast_conv.Conv2d and out._ctx.relu and out._ctx.scale is not None
                assert len(out._inputs) == 4 and main._later is not None    # fused; bn3's own output never made
            results[tier] = (out.data, xt.grad)
    for got, want in zip(results["fast"], results["simple"]):
        np.testing.assert_allclose(got, want, **TIGHT)


def test_residual_add_float32_error_and_where_it_does_not_fuse(rng):
    """Float32 (a 1x1 256 -> 256 at 14x14 + BN + identity shortcut + ReLU) against the simple tier in
    float64, relative to the largest value: measured 4.5e-7 forward, 3.3e-7 input gradient (bound
    5e-6). Not fused: a 3x3 convolution, a shortcut of another shape (broadcasting), the simple tier."""
    x = rng.standard_normal((1, 256, 14, 14))
    w3, *_ = conv_bn(rng, C=256, O=256, k=1, bias=False)
    w3 /= 16
    bn3 = conv_bn(rng, C=256, O=256, k=1)[2:]
    g = rng.standard_normal((1, 256, 14, 14))
    got, want = {}, {}
    for tier, dtype, store in (("fast", np.float32, got), ("simple", np.float64, want)):
        with mg.use_ops(tier):
            xt = mg.Tensor(x.astype(dtype), requires_grad=True)
            bn = [mg.Tensor(a.astype(dtype)) for a in bn3[:2]] + [a.astype(dtype) for a in bn3[2:]]
            _, out = bottleneck_tail(xt, mg.Tensor(w3.astype(dtype)), bn, lambda x: x, 1, "main+shortcut")
            out.backward(g.astype(dtype))
            store.update(out=out.data, dx=xt.grad, fused=out._op is fast_conv.Conv2d and len(out._inputs) == 4)
    assert got["fused"] and not want["fused"]
    assert got["out"].dtype == got["dx"].dtype == np.float32
    errs = [np.abs(got[n] - want[n]).max() / np.abs(want[n]).max() for n in ("out", "dx")]
    assert max(errs) <= 5e-6, errs
    # The input needs a gradient, so that every op is recorded (_op, _inputs) and fused or not can be
    # told apart: fused, the sum is the convolution itself with 4 inputs; not, a plain Add of the
    # convolution's output and the other tensor.
    with mg.use_ops("fast"):
        xs = mg.Tensor(rng.standard_normal((1, 3, 5, 5)), requires_grad=True)
        w1 = mg.Tensor(rng.standard_normal((4, 3, 1, 1)))
        fused = F.conv2d(xs, w1, None, 1, 0) + mg.Tensor(np.ones((1, 4, 5, 5)))
        assert fused._op is fast_conv.Conv2d and len(fused._inputs) == 4        # the same check fuses here
        for k, padding, r_shape in ((3, 1, (1, 4, 5, 5)), (1, 0, (1, 4, 1, 1))):  # a 3x3; a broadcast
            c = F.conv2d(xs, mg.Tensor(rng.standard_normal((4, 3, k, k))), None, 1, padding)
            r = mg.Tensor(np.ones(r_shape))
            s = c + r
            assert s._op is F.Add and s._inputs[0] is c and s._inputs[1] is r, (k, r_shape)
            assert c._op is fast_conv.Conv2d and len(c._inputs) == 2 and s.shape == (1, 4, 5, 5)


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
