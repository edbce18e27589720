"""Input gradients, deconvnet and guided reconstructions, against PyTorch and Captum (when installed),
and the Sec. 4 equivalences."""
import numpy as np
import pytest

import minigrad as mg
import saliency
from saliency import deconvnet

from .twin import images, random_vgg, torch_twin


def rel(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.fixture(scope="module")
def model():
    return random_vgg()


@pytest.fixture(scope="module")
def batch():
    return images(3, 32)


TARGETS = [2, 7, 7]


def test_gradient_shape_dtype_and_batched_targets(model, batch):
    g = saliency.input_gradient(model, batch, TARGETS)
    assert g.shape == batch.shape and g.dtype == np.float32
    one = saliency.input_gradient(model, batch[1:2], 7)
    np.testing.assert_allclose(g[1:2], one, rtol=1e-5, atol=1e-7)   # images do not interact
    m = saliency.saliency_map(g)
    assert m.shape == (3, 32, 32) and m.dtype == np.float32
    np.testing.assert_array_equal(m, np.abs(g).max(axis=1))
    # weights are untouched and get no gradient
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_input_gradient_is_the_score_derivative(model, batch):
    """A float64 finite-difference check of dS_c/dI along random directions, on the whole VGG."""
    m64 = random_vgg()
    for p in m64.parameters():
        p.data = p.data.astype(np.float64)
    x = batch[:1].astype(np.float64)
    g = saliency.input_gradient(m64, x, 3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        d = rng.standard_normal(x.shape)
        eps = 1e-6
        with mg.no_grad():
            plus = m64(mg.Tensor(x + eps * d)).data[0, 3]
            minus = m64(mg.Tensor(x - eps * d)).data[0, 3]
        np.testing.assert_allclose((plus - minus) / (2 * eps), float((g * d).sum()), rtol=1e-6)


@pytest.mark.parametrize("score", ["probability", "log_probability"])
def test_softmax_scores_against_finite_differences(model, batch, score):
    x = batch[:1].astype(np.float64)
    m64 = random_vgg()
    for p in m64.parameters():
        p.data = p.data.astype(np.float64)
    g = saliency.input_gradient(m64, x, 5, score=score)
    d = np.random.default_rng(1).standard_normal(x.shape)

    def s(v):
        with mg.no_grad():
            z = m64(mg.Tensor(v)).data[0]
        logp = z[5] - np.log(np.exp(z - z.max()).sum()) - z.max()
        return logp if score == "log_probability" else np.exp(logp)

    eps = 1e-6
    np.testing.assert_allclose((s(x + eps * d) - s(x - eps * d)) / (2 * eps), float((g * d).sum()), rtol=1e-6)


def test_against_torch_and_captum(model, batch):
    torch = pytest.importorskip("torch")
    net = torch_twin(model)
    x = torch.tensor(batch, requires_grad=True)
    out = net(x)
    with mg.no_grad():
        logits = model(mg.Tensor(batch)).data
    assert rel(logits, out.detach().numpy()) < 1e-4
    out[torch.arange(3), torch.tensor(TARGETS)].sum().backward()
    assert rel(saliency.input_gradient(model, batch, TARGETS), x.grad.numpy()) < 1e-4

    captum = pytest.importorskip("captum.attr")
    for rule, method in (("deconvnet", captum.Deconvolution), ("guided", captum.GuidedBackprop)):
        theirs = method(net).attribute(torch.tensor(batch), target=torch.tensor(TARGETS)).detach().numpy()
        ours = saliency.input_gradient(model, batch, TARGETS, rule=rule)
        assert rel(ours, theirs) < 1e-4, rule


def test_layer_gradient_from_strongest_unit(model, batch):
    g, units = saliency.layer_gradient(model, batch, "conv2_2", rule="gradient")
    act = model(mg.Tensor(batch), until="conv2_2").data.reshape(3, -1)
    np.testing.assert_array_equal(units[:, 0], act.argmax(1))
    # Its gradient equals the gradient of that single activation, computed by hand.
    x = mg.Tensor(batch[:1].copy(), requires_grad=True)
    a = model(x, until="conv2_2")
    a.reshape(1, -1)[0, int(units[0, 0])].backward()
    # float32, and the batch of 3 goes through the GEMMs in one chunk where this image went alone:
    # other summation orders, so agreement to float32 rounding (1e-5 of the largest value), not bits.
    assert rel(g[:1], x.grad) < 1e-5
    gc, uc = saliency.layer_gradient(model, batch, "conv2_2", channel=5, top_k=3)
    plane = 16 * 16
    assert ((uc >= 5 * plane) & (uc < 6 * plane)).all()


def test_deconvnet_differs_from_gradient_only_through_relu_masks(model, batch):
    r = deconvnet.compare_rules(model, batch, TARGETS)
    assert r["relative_difference"]["gradient"] == 0
    assert r["relative_difference"]["deconvnet"] > 0.1            # they do differ on a real net...
    assert 0 < r["mask_disagreement"] < 1 and r["relu_units"] > 0
    checks = deconvnet.equivalence_checks(model, batch, TARGETS)    # ...and coincide where no mask can
    assert checks == {"no ReLUs": 0.0, "from conv1_1": 0.0}


def test_bad_targets_and_inputs(model, batch):
    with pytest.raises(ValueError, match="class index 10 is out of range: the model has 10 classes"):
        saliency.input_gradient(model, batch, 10)
    with pytest.raises(ValueError, match="got 2 targets for 3 images"):
        saliency.input_gradient(model, batch, [1, 2])
    bad = batch.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        saliency.input_gradient(model, bad, 1)
    with pytest.raises(ValueError, match="unknown layer 'conv9_9'"):
        saliency.layer_gradient(model, batch, "conv9_9")


def test_training_gradients_of_every_weight_match_torch(batch):
    """The cross-entropy gradient of every weight and bias of a VGG in training mode (dropout p = 0, so
    both nets compute the same function), against the same net in PyTorch: what train_shapes.py uses."""
    torch = pytest.importorskip("torch")
    from minigrad import functional as F
    model = random_vgg()
    for name in model.layer_names:
        if name.startswith("drop"):
            getattr(model, name).p = 0.0
    model.train()
    net = torch_twin(model).train()
    labels = np.array([1, 4, 9])
    loss = F.cross_entropy(model(mg.Tensor(batch)), labels)
    loss.backward()
    ref = torch.nn.functional.cross_entropy(net(torch.tensor(batch)), torch.tensor(labels))
    ref.backward()
    assert abs(loss.item() - ref.item()) < 1e-5
    theirs = [m for m in net if hasattr(m, "weight")]
    for name, t in zip(model.weight_layers, theirs):
        layer = getattr(model, name)
        assert rel(layer.weight.grad, t.weight.grad.numpy()) < 1e-4, name
        assert rel(layer.bias.grad, t.bias.grad.numpy()) < 1e-4, name


def test_rule_defaults_to_the_rule_in_force_and_an_argument_overrides(model, batch):
    """Every function taking ``rule`` follows ``mg.relu_rule(...)`` when not given one (issue: inside
    ``with mg.relu_rule("deconvnet")`` the library's own default "gradient" used to win)."""
    def each(**rule):                                               # rule="...", or nothing
        g = saliency.input_gradient(model, batch, TARGETS, **rule)
        lg, _ = saliency.layer_gradient(model, batch, "conv2_2", **rule)
        sg = saliency.smoothgrad(model, batch[:1], 2, n=2, chunk=2, **rule)
        big = images(1, 36)[0]                                      # (3, 36, 36): 10 crops of 32
        tc = saliency.ten_crop_saliency(model, big, 2, crop=32, **rule)
        return g, lg, sg, tc

    explicit = {r: each(rule=r) for r in ("gradient", "deconvnet", "guided")}
    for a, b in zip(explicit["gradient"], explicit["deconvnet"]):
        assert not np.array_equal(a, b)                             # the rules do differ here
    for r in ("gradient", "deconvnet", "guided"):
        with mg.relu_rule(r):
            for got, want in zip(each(), explicit[r]):              # the rule in force
                np.testing.assert_array_equal(got, want)
            with mg.relu_rule("deconvnet" if r != "deconvnet" else "gradient"):
                for got, want in zip(each(rule=r), explicit[r]):    # an explicit argument wins
                    np.testing.assert_array_equal(got, want)
    for got, want in zip(each(), explicit["gradient"]):             # outside any block: the gradient
        np.testing.assert_array_equal(got, want)
    for got, want in zip(each(rule=None), explicit["gradient"]):    # None: the rule in force
        np.testing.assert_array_equal(got, want)
