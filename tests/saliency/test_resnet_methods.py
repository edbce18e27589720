"""Every saliency method on a ResNet: layer gradients from inside the blocks against PyTorch, every
ReLU call under the rule in force (the ones after the residual additions and the block's reused
ReLU included), SmoothGrad, 10 crops, class models, the Sec. 4 checks and the sanity cascade.

The nets are small (tests/saliency/twin.py: random_resnet, with random batch norms) so that each
test takes a second; the model-level comparison of full ResNet-18/50 logits and input gradients
with PyTorch is tests/models/test_resnet.py.
"""
import numpy as np
import pytest

import minigrad as mg
import saliency
from minigrad import nn, relu_rules
from saliency import deconvnet, sanity
from saliency.class_model import PRESETS, tutorial_class_model

from ..minigrad.conftest import tier  # noqa: F401  (the fixture: once per ops tier)
from .twin import images, random_resnet

RULES = relu_rules.RULES


@pytest.fixture(scope="module")
def bottleneck():
    """Bottleneck blocks 2-1 with torchvision's 7x7 stride-2 stem and max pool, at 48 px."""
    return random_resnet("bottleneck", depths=(2, 1), widths=(4, 8), stem_width=8, size=48, stem="imagenet", seed=5)


@pytest.fixture(scope="module")
def basic():
    """Basic blocks 1-1 with the small 3x3 stem, at 32 px."""
    return random_resnet("basic", depths=(1, 1), widths=(8, 16), size=32, seed=2)


def rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def torch_twin64(model):
    """The same network in PyTorch (tests/models/torch_resnet.py: every ReLU call follows the rule
    given), float64, with our weights and statistics."""
    torch = pytest.importorskip("torch")
    from ..models.torch_resnet import TorchResNet
    c = model.config
    net = TorchResNet(c.block == "bottleneck", c.depths, c.widths, c.stem_width, c.num_classes,
                      stem_kernel=c.stem_kernel, maxpool=c.maxpool)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return net.double().eval()


def torch_layer_gradient(net, x, layer, units, rule, relu_rule_at=("stem", "inner", "after_add")):
    """d(sum of the activations at ``units``)/dx, as layer_gradient defines it."""
    import torch
    xt = torch.from_numpy(x).requires_grad_(True)
    taps = {}
    net(xt, rule=rule, taps=taps, relu_rule_at=relu_rule_at)
    act = taps[layer]
    seed = torch.zeros_like(act).reshape(act.shape[0], -1)
    for n, row in enumerate(units):
        seed[n, torch.from_numpy(np.asarray(row))] = 1
    (grad,) = torch.autograd.grad(act, xt, seed.reshape(act.shape))
    return grad.numpy()


LAYERS = ["layer1.0", "layer1", "layer1.1.conv2", "layer2.0.bn3", "layer2.0.downsample.1", "avgpool"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("layer", LAYERS)
def test_layer_gradient_from_inside_the_net_matches_torch(bottleneck, rule, layer):
    # float64 against float64: the same sums in another order (measured: at most 5.6e-16 of the largest
    # element over these layers and rules). A rule missing at some ReLUs moves it by 0.3 to 0.97 (next test).
    model64 = _as64(bottleneck)
    x = images(2, 48, seed=3).astype(np.float64)
    g, units = saliency.layer_gradient(model64, x, layer, top_k=3, rule=rule)
    assert g.shape == x.shape and g.dtype == np.float64 and units.shape == (2, 3)
    ref = torch_layer_gradient(torch_twin64(bottleneck), x, layer, units, rule)
    assert np.abs(ref).max() > 0
    assert rel(g, ref) <= 1e-12, f"{rule} from {layer}: received {g.ravel()[:3]}, expected {ref.ravel()[:3]}"


def _as64(model):
    import copy
    return copy.deepcopy(model).to(dtype=np.float64)


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_the_rule_reaches_the_relus_after_the_additions_and_the_reused_one(bottleneck, rule):
    """A reference that skips the rule at the ReLUs after the additions ("after_add"), or at the
    block's ReLU module where it is called again after bn1 and bn2 ("inner"), is far from ours: our
    layer gradient from the last stage applies the rule at both."""
    model64, x = _as64(bottleneck), images(1, 48, seed=4).astype(np.float64)
    g, units = saliency.layer_gradient(model64, x, "layer2", top_k=5, rule=rule)
    net = torch_twin64(bottleneck)
    assert rel(g, torch_layer_gradient(net, x, "layer2", units, rule)) <= 1e-12
    for where in (("stem", "inner"), ("stem", "after_add")):
        wrong = torch_layer_gradient(net, x, "layer2", units, rule, relu_rule_at=where)
        assert rel(g, wrong) > 1e-2, f"{rule} only at {where} agrees"


@pytest.mark.parametrize("rule", RULES)
def test_every_relu_call_follows_the_rule_on_both_tiers(bottleneck, tier, rule):
    """Each ReLU backward of an input gradient returns the rule's formula, and there is one per ReLU
    call of the forward: the stem's, then three per bottleneck block (after bn1, bn2 and the
    addition: torchvision calls one ReLU module three times)."""
    calls = []

    def check(x_positive, g, result):
        calls.append(g.shape)
        np.testing.assert_array_equal(result, getattr(relu_rules, rule)(x_positive, g))

    with relu_rules.observe(check):
        g = saliency.input_gradient(bottleneck, images(1, 48, seed=6), 3, rule=rule)
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    blocks = sum(bottleneck.config.depths)
    assert len(calls) == 1 + 3 * blocks, calls
    channels = [8]                                            # the stem's, then per block
    for depth, width in zip(bottleneck.config.depths, bottleneck.config.widths):
        channels += [width, width, 4 * width] * depth
    assert sorted(s[1] for s in calls) == sorted(channels)


def test_deconvnet_equivalence_checks_and_relus_put_back(basic):
    x = images(1, 32, seed=7)
    relus = {name: m for name, m in basic.named_modules() if isinstance(m, nn.ReLU)}
    assert sorted(relus) == ["layer1.0.relu", "layer2.0.relu", "relu"]     # the stem's and one per block
    checks = deconvnet.equivalence_checks(basic, x, 2)
    assert checks == {"no ReLUs": 0.0, "from conv1": 0.0}
    assert {name: m for name, m in basic.named_modules() if isinstance(m, nn.ReLU)} == relus   # put back
    with deconvnet.without_relus(basic):
        assert not any(isinstance(m, nn.ReLU) for _, m in basic.named_modules())
    r = deconvnet.compare_rules(basic, x, 2)
    assert r["relative_difference"]["gradient"] == 0 and r["relative_difference"]["deconvnet"] > 0.05
    # through the global pool every unit of the last ReLU (after the last addition, 16 x 16 x 16)
    # gets the class score's signal; the ReLUs below it add those the deconvnet rule lets through
    assert 0 < r["mask_disagreement"] < 1 and r["relu_units"] > 16 * 16 * 16
    r = deconvnet.compare_rules(basic, x, 2, layer="layer2.0", channel=3)
    assert r["grads"]["guided"].shape == x.shape and 0 < r["relu_units"] < 16 * 16 * 16


def test_smoothgrad_and_ten_crops_on_a_resnet(basic):
    batch = images(2, 32, seed=8)
    g = saliency.smoothgrad(basic, batch, [1, 4], n=3, sigma=0.0)
    assert g.shape == batch.shape and g.dtype == np.float32
    assert rel(g, saliency.input_gradient(basic, batch, [1, 4])) < 1e-6    # no noise: the gradient
    noisy = saliency.smoothgrad(basic, batch, [1, 4], n=4, sigma=0.2)
    assert np.isfinite(noisy).all() and rel(noisy, g) > 1e-3
    big = images(1, 40, seed=9)[0]
    smap = saliency.ten_crop_saliency(basic, big, 5, rule="guided")
    assert smap.shape == (40, 40) and smap.dtype == np.float32 and np.isfinite(smap).all() and smap.min() >= 0
    crop = np.ascontiguousarray(big[:, 4:36, 4:36][None])                 # the centre crop is one of the ten
    centre = saliency.saliency_map(saliency.input_gradient(basic, crop, 5, rule="guided"))[0]
    assert smap[4:36, 4:36].max() > 0 and centre.max() > 0


def test_class_models_on_a_resnet(basic):
    image, history = saliency.class_model(basic, 3, steps=12, return_history=True)
    assert image.shape == (3, 32, 32) and image.dtype == np.float32 and np.isfinite(image).all()
    assert history["alpha"].shape == (32, 32)
    image, history = saliency.class_model(basic, 3, **dict(PRESETS["lucid"], steps=12), return_history=True)
    assert history["final_score"] > history["scores"][0]                 # S_c of the same (opaque) picture
    image, history = tutorial_class_model(basic, 3, steps=15, snapshot_every=5, return_history=True)
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    assert [s for s, _ in history["snapshots"]] == [5, 10, 15]
    assert history["scores"][-1] > history["scores"][0]


def test_tutorial_recipe_on_a_resnet_matches_pytorch(basic):
    """The tutorial's SGD on -S_c + lambda ||I||_2 through a ResNet (batch norms in eval mode), 20
    steps, against the same recipe in PyTorch (float32 both; rounding grows over the steps: measured
    2.8e-7 of the largest pixel)."""
    torch = pytest.importorskip("torch")
    from .test_class_model import torch_tutorial
    ours = tutorial_class_model(basic, 3, lam=0.1, p=2, steps=20)
    net = torch_twin64(basic).float()
    torch.set_num_threads(1)
    ref = torch_tutorial(lambda img: net(img), 3, 0.1, 2, 32, steps=20)
    assert rel(ours, ref) < 1e-5


def test_sanity_cascade_on_a_resnet_by_block_and_by_layer(basic):
    batch = images(2, 32, seed=10)
    state = {k: np.array(v) for k, v in basic.state_dict().items()}
    result, maps = sanity.cascading_randomisation(basic, batch, [0, 6], methods=("gradient", "guided"))
    assert result["stages"] == ["none", "fc", "layer2.0", "layer1.0", "conv1"]
    for values in result["methods"].values():
        assert values["spearman_abs"][0] == pytest.approx(1.0) and len(values["ssim"]) == 5
        assert min(values["spearman_abs"][1:]) < 0.9
    assert maps["gradient"][-1].shape == (2, 32, 32)
    for k, v in basic.state_dict().items():                        # weights and BN statistics restored
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    by_layer = [name for name, _ in sanity.stages(basic, by="layer")]
    assert by_layer == ["fc", "layer2.0.downsample.0", "layer2.0.conv2", "layer2.0.conv1", "layer1.0.conv2",
                        "layer1.0.conv1", "conv1"]
    assert dict(sanity.stages(basic, by="layer"))["layer2.0.downsample.0"] == ["layer2.0.downsample.0",
                                                                               "layer2.0.downsample.1"]


def test_batch_norm_reinitialised_as_new():
    model = random_resnet(seed=1)
    bn = model.layer("layer1.0.bn2")
    assert bn.running_var.min() > 0.4 and np.abs(bn.bias.data).max() > 0        # random before
    sanity.reinitialise(bn, np.random.default_rng(0))
    fresh = nn.BatchNorm2d(bn.num_features)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(bn.state_dict()[k], v, err_msg=k)
        assert bn.state_dict()[k].dtype == v.dtype


def test_input_gradient_targets_and_dtype(basic):
    x = images(3, 32, seed=11)
    g = saliency.input_gradient(basic, x, [0, 5, 9])
    assert g.shape == x.shape and g.dtype == np.float32 and np.isfinite(g).all()
    m = saliency.saliency_map(g)
    assert m.shape == (3, 32, 32) and (m >= 0).all()
    with pytest.raises(ValueError, match="out of range"):
        saliency.input_gradient(basic, x, 10)
    with pytest.raises(ValueError, match="unknown layer 'layer3'"):
        saliency.layer_gradient(basic, x, "layer3")
    assert mg.current_rule() == "gradient"
