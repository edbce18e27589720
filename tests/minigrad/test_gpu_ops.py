"""The ops, VGG logits and saliency on the GPU (CuPy + numba.cuda) against the CPU.

These need a CUDA GPU with CuPy and are skipped without one; the kernels' indexing is checked on
every machine by test_gpu_kernels.py under the CUDA simulator.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import randomness, relu_rules
from minigrad.fast import conv as fast_conv

from ..conftest import away_from_zero, distinct

pytestmark = pytest.mark.skipif(not mg.gpu_available(), reason="needs a CUDA GPU and CuPy")


def gpu(a, grad=False):
    return mg.Tensor(mg.to_device(a, "gpu"), requires_grad=grad)


def rel(a, b):
    a, b = mg.backend.to_numpy(a), mg.backend.to_numpy(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.mark.parametrize("stride,padding,k", [(1, 1, 3), (2, 0, 3), (3, 2, 5)])
def test_gpu_conv2d_gradcheck_float64(rng, stride, padding, k):
    x = gpu(rng.standard_normal((2, 2, 7, 6)), True)
    w = gpu(rng.standard_normal((3, 2, k, k)), True)
    b = gpu(rng.standard_normal(3), True)
    assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), [x, w, b])


def test_gpu_pool_relu_gradcheck_float64(rng):
    x = gpu(distinct(rng, (2, 2, 7, 7)), True)
    assert mg.gradcheck(lambda x: F.max_pool2d(x, 3, 2), [x])
    y = gpu(away_from_zero(rng, (3, 4)), True)
    assert mg.gradcheck(F.relu, [y])


@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_gpu_small_net_matches_cpu(rng, rule):
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((5, 8 * 8 * 8)).astype(np.float32) * 0.05
    grads, outs = [], []
    for put in (lambda a, g=False: mg.Tensor(a.copy(), requires_grad=g), gpu):
        t = put(x, True)
        out = F.linear(F.flatten(F.max_pool2d(F.conv2d(t, put(w1), padding=1, relu=True), 2)), put(w2))
        with mg.relu_rule(rule):
            out[:, 1].sum().backward()
        grads.append(t.grad)
        outs.append(out.data)
    assert rel(outs[1], outs[0]) < 1e-5 and rel(grads[1], grads[0]) < 1e-5


def test_gpu_vgg16_logits_and_saliency_match_cpu(monkeypatch):
    import saliency
    from models import vgg
    monkeypatch.setattr(fast_conv, "WINOGRAD_MIN_CHANNELS", 0)      # the CPU side by im2col too: the same algorithm
    model = vgg.build("vgg16", seed=0).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    with mg.no_grad():
        cpu_logits = model(mg.Tensor(x)).data
    cpu_g = saliency.input_gradient(model, x, [3, 7])
    model.to("gpu")
    with mg.no_grad():
        gpu_logits = model(gpu(x)).data
    gpu_g = saliency.input_gradient(model, x, [3, 7])
    assert rel(gpu_logits, cpu_logits) < 1e-4
    assert rel(gpu_g, cpu_g) < 1e-4


def test_gpu_check_passes():
    assert mg.tiers.gpu_problem() is None              # a CuPy matmul and a numba.cuda launch both ran


def test_gpu_ops_refuse_arrays_on_two_devices(rng):
    x = gpu(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"^conv2d: arrays on different devices \(gpu \d+, cpu\)"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"^linear: arrays on different devices"):
        F.linear(F.flatten(x), np.ones((4, 50), np.float32))
    with pytest.raises(ValueError, match=r"^add: arrays on different devices"):
        x + np.ones((5, 5), np.float32)


def test_gpu_kernels_run_on_cupys_current_stream(rng):
    import cupy
    from minigrad.fast import gpu_kernels
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    want = F.conv2d(mg.Tensor(x), mg.Tensor(w), padding=1, relu=True).data
    with cupy.cuda.Stream(non_blocking=True) as stream:
        got = F.conv2d(gpu(x), gpu(w), padding=1, relu=True).data
        got = cupy.asnumpy(got, stream=stream)
        stream.synchronize()
    assert (cupy.cuda.Device().id, stream.ptr) in gpu_kernels._streams
    assert rel(got, want) < 1e-5


def test_gpu_dropout_mask_is_drawn_on_the_device():
    import cupy
    assert type(randomness._rng_on(cupy)).__module__.startswith("cupy")
    x = gpu(np.ones((64, 1000), np.float32), True)
    mg.manual_seed(0)
    y = F.dropout(x, 0.25, True).data
    assert isinstance(y, cupy.ndarray) and y.dtype == np.float32
    assert abs(float((y > 0).mean()) - 0.75) < 0.01   # 64000 draws: the standard deviation is 0.0017
    assert set(cupy.unique(y).get().tolist()) <= {0.0, float(np.float32(1) / np.float32(0.75))}
    mg.manual_seed(0)
    assert bool((F.dropout(x, 0.25, True).data == y).all())   # seeded by manual_seed


def test_gpu_smoothgrad_and_ten_crops_match_cpu():
    import cupy

    import saliency
    from ..saliency.twin import images, random_vgg
    model, image, batch = random_vgg(size=32), images(1, 40)[0], images(1, 32)
    cpu_map = saliency.ten_crop_saliency(model, image, 6)
    cpu_g = saliency.smoothgrad(model, batch, 3, n=4, sigma=0.0)
    model.to("gpu")
    gpu_map = saliency.ten_crop_saliency(model, image, 6)
    assert isinstance(gpu_map, np.ndarray) and rel(gpu_map, cpu_map) < 1e-4
    g = saliency.smoothgrad(model, batch, 3, n=4, sigma=0.0)
    assert isinstance(g, cupy.ndarray) and rel(g, cpu_g) < 1e-4
    noisy = saliency.smoothgrad(model, batch, 3, n=4, sigma=0.2)   # the noise drawn by CuPy
    assert isinstance(noisy, cupy.ndarray) and noisy.dtype == np.float32 and bool(cupy.isfinite(noisy).all())
    assert rel(noisy, g) > 1e-3                                     # it did add noise
