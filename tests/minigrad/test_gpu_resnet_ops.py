"""ResNet's ops on the GPU (CuPy + numba.cuda): float64 gradient checks, and a tiny ResNet's logits,
input gradients, parameter gradients and running statistics against the CPU; ``F.conv2d``'s scale,
residual and relu, and a ResNet's folded blocks, against the CPU. Skipped without a CUDA GPU; the padded max-pool kernels'
indexing is checked on every machine by test_gpu_kernels.py under the CUDA simulator."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, relu_rules

from ..conftest import distinct
from .test_batchnorm import bn_inputs
from .test_gpu_ops import gpu, rel
from .test_tiers import TinyResNet

pytestmark = pytest.mark.skipif(not mg.gpu_available(), reason="needs a CUDA GPU and CuPy")


@pytest.mark.parametrize("k,s,p", [(3, 2, 1), ((3, 5), (2, 1), (1, 2)), (2, 2, 1)])
def test_gpu_padded_max_pool2d_gradcheck_float64(tier, rng, k, s, p):
    x = gpu(distinct(rng, (2, 2, 9, 8)), True)
    assert mg.gradcheck(lambda x: F.max_pool2d(x, k, s, p), [x])


@pytest.mark.parametrize("training", [True, False])
def test_gpu_batch_norm_and_global_avg_pool_gradcheck_float64(tier, rng, training):
    x, gamma, beta, mean, var = bn_inputs(rng, (2, 3, 5, 4))
    xt, gt, bt = gpu(x, True), gpu(gamma, True), gpu(beta, True)
    mean, var = mg.to_device(mean, "gpu"), mg.to_device(var, "gpu")
    assert mg.gradcheck(lambda x, g, b: F.global_avg_pool2d(F.batch_norm(x, g, b, mean, var, training) ** 2),
                        [xt, gt, bt])


@pytest.mark.parametrize("stride", [1, 2])
def test_gpu_pointwise_conv_matches_cpu(rng, stride):
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 6, 9, 8), (5, 6, 1, 1), (5,)))
    results = []
    for put in (lambda a, g=False: mg.Tensor(a.copy(), requires_grad=g), gpu):
        xt, wt, bt = put(x, True), put(w, True), put(b, True)
        out = F.relu(F.conv2d(xt, wt, bt, stride))
        assert out._ctx.pointwise
        with mg.relu_rule("guided"):
            out.backward(put(np.ones(out.shape, np.float32)))
        results.append((out.data, xt.grad, wt.grad, bt.grad))
    for got, want in zip(results[1], results[0]):
        assert rel(got, want) < 1e-5


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_gpu_tiny_resnet_matches_cpu(tier, rng, rule, training):
    x = rng.standard_normal((2, 3, 29, 26)).astype(np.float32)
    g = rng.standard_normal((2, 5)).astype(np.float32)
    results = []
    for device in ("cpu", "gpu"):
        net = TinyResNet(np.float32).train(training).to(device)
        if not training:
            net.requires_grad_(False)
        xt = mg.Tensor(mg.to_device(x, device), requires_grad=True)
        logits = net(xt)
        with mg.relu_rule(rule):
            logits.backward(mg.to_device(g, device))
        assert logits.dtype == xt.grad.dtype == np.float32 and mg.backend.device_of(xt.grad) == device
        grads = [p.grad for p in net.parameters()] if training else []
        results.append([logits.data, xt.grad] + grads + [b for _, b in net.named_buffers()])
    for got, want in zip(results[1], results[0]):
        assert rel(got, want) < 1e-5


@pytest.mark.parametrize("k,stride", [(3, 1), (1, 2)])
@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_gpu_conv_with_scale_residual_and_relu_matches_cpu(tier, rng, k, stride, rule):
    """One F.conv2d(..., scale=, residual=, relu=True) (fast: one fused convolution; on a GPU the scale
    goes onto the weights and the residual is added after it), forward and the input's and the
    residual's gradients, against the CPU (float32, relative 1e-5)."""
    x = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)
    w = (rng.standard_normal((5, 6, k, k)) / k).astype(np.float32)
    scale, shift = rng.uniform(0.5, 2, 5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    r = rng.standard_normal((2, 5, -(-9 // stride), -(-8 // stride))).astype(np.float32)
    results = []
    for device in ("cpu", "gpu"):
        put = (lambda a, g=False: mg.Tensor(mg.to_device(a, device), requires_grad=g))
        xt, rt = put(x, True), put(r, True)
        out = F.conv2d(xt, put(w), mg.to_device(shift, device), stride, k // 2,
                       scale=mg.to_device(scale, device), residual=rt, relu=True)
        with mg.relu_rule(rule):
            out.backward(mg.to_device(np.ones(out.shape, np.float32), device))
        assert mg.backend.device_of(xt.grad) == device and xt.grad.dtype == np.float32
        results.append((out.data, xt.grad, rt.grad))
    for got, want in zip(results[1], results[0]):
        assert rel(got, want) < 1e-5


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_gpu_folded_resnet_matches_cpu(tier, rng, block):
    """A ResNet in eval mode with frozen weights runs folded (models/blocks.py); logits and the input
    gradient on the GPU equal the CPU's (float32, relative 1e-5)."""
    from saliency.gradients import frozen
    from ..models.test_fusion import small_resnet
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    results = []
    for device in ("cpu", "gpu"):
        model = small_resnet(block).to(device=device, dtype=np.float32)
        with frozen(model):
            xt = mg.Tensor(mg.to_device(x, device), requires_grad=True)
            logits = model(xt)
            logits[:, 1].sum().backward()
        results.append((logits.data, xt.grad))
    for got, want in zip(results[1], results[0]):
        assert rel(got, want) < 1e-5
