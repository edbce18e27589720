"""dtype discipline: float32 in, float32 through every op and every gradient (no float64 leaks)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, nn


def graph_nodes(out):
    seen, stack, nodes = set(), [out], []
    while stack:
        t = stack.pop()
        if id(t) in seen or not isinstance(t, mg.Tensor):
            continue
        seen.add(id(t))
        nodes.append(t)
        stack.extend(t._inputs)
    return nodes


def vgg16_features(width=1.0):
    """VGG16's 13 convolutions and 5 pools (full widths), and a small head."""
    layers, c = [], 3
    for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for o in block:
            layers += [nn.Conv2d(c, o, 3, padding=1), nn.ReLU()]
            c = o
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(64, 10))


def test_vgg16_sized_forward_and_backward_stay_float32(tier, rng):
    net = vgg16_features()
    x = mg.Tensor(rng.standard_normal((2, 3, 64, 64)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(F.log_softmax(net(x)) * 1.0, np.array([1, 7]))
    nodes = graph_nodes(loss)
    assert len(nodes) > 30
    for t in nodes:
        if t._op is not None:
            t.retain_grad()
        assert t.dtype == np.float32, f"{t._op.__name__ if t._op else 'leaf'} output is {t.dtype}"
    loss.backward()
    for t in nodes:
        if t.requires_grad:
            assert t.grad is not None and t.grad.dtype == np.float32, \
                f"gradient of {t._op.__name__ if t._op else 'leaf'} is {t.grad.dtype if t.grad is not None else None}"


def test_each_op_keeps_float32(tier, rng):
    def f32(*shape):
        return mg.Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)

    x, w, b, v = f32(2, 3, 6, 6), f32(4, 3, 3, 3), f32(4), f32(5, 4)
    outs = {
        "conv2d": F.conv2d(x, w, b, 1, 1), "conv2d_relu": F.conv2d(x, w, b, 2, 1, relu=True),
        "max_pool2d": F.max_pool2d(x, 3, 2), "relu": F.relu(x), "flatten": F.flatten(x),
        "linear": F.linear(f32(3, 4), v, None), "dropout": F.dropout(x, 0.5, True),
        "log_softmax": F.log_softmax(f32(3, 5)), "cross_entropy": F.cross_entropy(f32(3, 5), np.array([0, 1, 4])),
        "mean": x.mean(), "pow": x ** 2, "exp": x.exp(), "div": x / 3, "sub": 1 - x, "matmul": f32(3, 4) @ f32(4, 2),
        "pow_np_float64": (x * x + 1.0) ** np.sqrt(np.float64(2 / 3)), "sum": x.sum(axis=(1, 2)),
        "getitem": f32(3, 5)[np.arange(3), np.array([0, 4, 2])], "transpose": x.transpose(3, 0, -1 + 3, 1),
        "reshape": x.reshape(6, -1), "neg": -x, "log": (x * x + 1.0).log(), "add": x + f32(3, 6, 6),
        "mul": x * f32(6), "softmax": F.softmax(f32(2, 4)),
    }
    for name, out in outs.items():
        assert out.dtype == np.float32, name
        for t in graph_nodes(out):
            t.grad = None
        out.backward(np.ones(out.shape, np.float64))          # even a float64 seed keeps float32
        for t in graph_nodes(out):
            if t._op is None and t.requires_grad:
                assert t.grad.dtype == np.float32, name


def test_astype_casts_forward_and_rounds_the_gradient_back(rng):
    """A float32 tensor cast to float64 (a loss computed in float64): the output is float64, the
    gradient reaching the float32 tensor is float32, the float64 gradient rounded once; a float64
    gradient check; a cast to an integer dtype is refused."""
    x = mg.Tensor(rng.standard_normal((2, 5)).astype(np.float32), requires_grad=True)
    y = F.log_softmax(x.astype(np.float64), axis=1)[:, 3].sum()
    assert y.dtype == np.float64
    y.backward()
    s = x.data.astype(np.float64)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    want = -p / p.sum(axis=1, keepdims=True)
    want[:, 3] += 1
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, want.astype(np.float32), rtol=0, atol=1e-7)
    assert mg.gradcheck(lambda a: (F.astype(a, np.float64) * a).sum(), [mg.Tensor(rng.standard_normal(4), requires_grad=True)])
    with pytest.raises(TypeError, match="astype: a float dtype is needed"):
        x.astype(np.int32)
