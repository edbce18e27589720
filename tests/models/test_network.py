"""models/network.py's logits and top1: one forward pass without a graph, on the host, chunked alike."""
import numpy as np

import minigrad as mg
from models import network, vgg

from .conftest import SMALL


def test_logits_and_top1_of_a_batch_on_the_host():
    model = vgg.build(dict(name="small", **SMALL), seed=3).eval()
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    with mg.no_grad():
        want = model(mg.Tensor(x)).data
    got = network.logits(model, x)
    assert isinstance(got, np.ndarray) and got.shape == (5, 5) and got.dtype == np.float32
    assert np.array_equal(got, want)
    assert np.allclose(network.logits(model, x, chunk=2), want, rtol=1e-5, atol=1e-6)   # 2 + 2 + 1 images
    top = network.top1(model, x)
    assert top.shape == (5,) and np.array_equal(top, want.argmax(axis=1))
    assert np.array_equal(network.top1(model, x, chunk=2), top)
    assert all(p.grad is None for p in model.parameters())                # no graph, no gradients
