"""Modules, initialisation, optimisers, and an end-to-end training run."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, nn, optim


class TinyNet(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 3 * 3, classes)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.fc(self.drop(self.flatten(self.features(x))))


def test_parameters_are_registered_in_order():
    net = TinyNet()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                     "fc.weight", "fc.bias"]
    assert all(p.dtype == np.float32 and p.requires_grad for p in net.parameters())


def test_train_eval_reach_every_submodule():
    net = TinyNet().eval()
    assert not net.training and not net.drop.training and not net.features[0].training
    net.train()
    assert net.drop.training


def test_state_dict_round_trip_and_shape_errors():
    a, b = TinyNet(), TinyNet()
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)
    bad = dict(a.state_dict())
    bad["fc.weight"] = np.zeros((3, 144), np.float32)
    with pytest.raises(ValueError, match=r"fc.weight has shape \(3, 144\), expected \(4, 144\)"):
        b.load_state_dict(bad)
    with pytest.raises(KeyError, match="missing"):
        b.load_state_dict({})


def test_he_initialisation_scale():
    mg.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3)
    std = conv.weight.data.std()
    assert abs(std - np.sqrt(2 / (64 * 9))) / np.sqrt(2 / (64 * 9)) < 0.02   # 73k samples: ~0.3% s.e.
    assert conv.weight.dtype == np.float32


def test_sgd_momentum_and_weight_decay_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0], np.float32))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    p.grad = np.array([0.5, 0.5], np.float32)
    opt.step()
    g1 = np.array([0.5, 0.5]) + 0.01 * np.array([1.0, -2.0])
    expected = np.array([1.0, -2.0]) - 0.1 * g1
    np.testing.assert_allclose(p.data, expected, rtol=1e-6)
    p.grad = np.array([0.5, 0.5], np.float32)
    opt.step()
    g2 = np.array([0.5, 0.5]) + 0.01 * expected
    np.testing.assert_allclose(p.data, expected - 0.1 * (0.9 * g1 + g2), rtol=1e-6)
    assert p.dtype == np.float32


def test_adam_first_step_moves_by_lr():
    p = nn.Parameter(np.array([1.0, -2.0, 3.0], np.float32))
    opt = optim.Adam([p], lr=0.01)
    p.grad = np.array([0.3, -5.0, 1e-3], np.float32)
    opt.step()
    # After bias correction the first step is lr * g / (|g| + eps) ~ lr * sign(g).
    np.testing.assert_allclose(p.data, [0.99, -1.99, 2.99], rtol=1e-5)
    assert p.dtype == np.float32


def _bars(n, rng):
    """A 4-class 12x12 task: a bright horizontal or vertical bar in the top or bottom half, in noise."""
    x = rng.normal(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 4, n)
    for k in range(n):
        pos = rng.integers(1, 5) + (6 if y[k] >= 2 else 0)
        if y[k] % 2 == 0:
            x[k, 0, pos, 1:11] += 2.0
        else:
            x[k, 0, pos:pos + 4, rng.integers(1, 11)] += 2.0
    return x, y


def test_sgd_trains_a_small_cnn_to_near_perfect_accuracy():
    rng = np.random.default_rng(0)
    mg.manual_seed(0)
    x, y = _bars(256, rng)
    net = TinyNet()
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(8):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            loss = F.cross_entropy(net(mg.Tensor(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with mg.no_grad():
        acc = (net(mg.Tensor(x)).data.argmax(1) == y).mean()
    assert loss.dtype == np.float32
    assert acc >= 0.98, f"training accuracy {acc:.3f}"
