"""ResNet-18 and ResNet-50 against PyTorch: saved by torch in both containers, converted, loaded, run.

The torch twins (tests/models/torch_resnet.py) have random weights and random BN statistics, and
every one of their ReLU calls follows the rule under test. The comparisons, at 64x64 (the pool is
global, so any size runs; small keeps the test short):

* our engine in float64 against torch in float64 (the same float32 weights, widened): logits and
  input gradients within 1e-12 of their largest magnitude. Both compute the same sums in another
  order; measured: 1e-15 to 3e-15 for both nets, logits and all three rules. A wrong layer,
  statistic or mask moves the result by 1e-2 or more (the wrong references below: 0.6 to 500).
* our engine in float32 (what runs by default) against the float64 reference: within 1e-4 of the
  largest magnitude, logits and input gradients (float32 rounds at 6e-8, grown over ~50 layers;
  measured: logits 5e-7 and 6.5e-7, gradients 2.6e-7 to 1.1e-6). A ReLU input within float32
  rounding of 0 could flip a mask and move a gradient by more; none does at these seeds.

The default (fast) tier runs all of it; the reading tier repeats ResNet-18's guided gradient.
Time: this file took 46 s of CPU time (user + sys, both cores together), most of it ResNet-50 in float64.
"""
import copy
import zipfile

import numpy as np
import pytest

import minigrad as mg
import models
import saliency
from models import convert, resnet
from models.formats import hdf5

from .conftest import rel_err

torch = pytest.importorskip("torch")
from .torch_resnet import torch_resnet  # noqa: E402  (imports torch)

SIDE = 64
RULES = ("gradient", "deconvnet", "guided")


class Case:
    """A torch ResNet, the files it was saved to, our model loaded from them, and an input."""


@pytest.fixture(scope="module", params=["resnet18", "resnet50"])
def case(request, tmp_path_factory):
    c = Case()
    c.arch = request.param
    d = tmp_path_factory.mktemp(c.arch)
    c.torch32 = torch_resnet(c.arch, seed=18 if c.arch == "resnet18" else 50)
    c.torch64 = copy.deepcopy(c.torch32).double()
    sd = c.torch32.state_dict()
    c.state = {k: v.numpy().copy() for k, v in sd.items()}
    legacy, zipped = d / f"{c.arch}-legacy.pth", d / f"{c.arch}-zip.pth"
    torch.save(sd, legacy, _use_new_zipfile_serialization=False)
    torch.save(sd, zipped)
    assert not zipfile.is_zipfile(legacy) and zipfile.is_zipfile(zipped)   # really the two containers
    c.h5 = {"legacy": d / f"{c.arch}-legacy.h5", "zip": d / f"{c.arch}-zip.h5"}
    c.wf = {"legacy": convert.convert(legacy, c.h5["legacy"]),               # inferred from the keys
            "zip": convert.convert(zipped, c.h5["zip"], arch=c.arch)}       # checked
    legacy.unlink()
    zipped.unlink()
    c.model32 = models.load(c.h5["legacy"])
    c.model64 = models.load(c.h5["zip"]).to(dtype=np.float64)
    n = 2 if c.arch == "resnet18" else 1
    c.x = np.random.default_rng(7).standard_normal((n, 3, SIDE, SIDE))          # float64
    with torch.no_grad():
        c.ref_logits = c.torch64(torch.from_numpy(c.x)).numpy()
    c.target = np.argsort(c.ref_logits, axis=1)[:, -2]                         # not the top class
    return c


def reference_gradient(c, rule, relu_rule_at=("stem", "inner", "after_add")):
    x = torch.from_numpy(c.x).requires_grad_(True)
    logits = c.torch64(x, rule=rule, relu_rule_at=relu_rule_at)
    logits[torch.arange(len(c.target)), torch.from_numpy(c.target)].sum().backward()
    return x.grad.numpy()


def test_both_containers_convert_to_the_same_file(case):
    c = case
    for kind, wf in c.wf.items():
        assert wf.arch == c.arch and wf.meta["channel_order"] == "RGB" and wf.meta["crop"] == 224
        assert len(wf.classes) == 1000 and wf.classes[130] == "flamingo"
        read = hdf5.read(c.h5[kind])
        assert read.arch == c.arch and list(read.layers) == list(wf.layers)
        for key, expected in c.state.items():
            layer, dataset = key.rsplit(".", 1)
            found = read.layers[layer][dataset]
            assert found.dtype == (np.int64 if dataset == "num_batches_tracked" else np.float32), key
            assert np.array_equal(found, expected), f"{kind}: {key} differs"
    assert sum(len(g) for g in read.layers.values()) == len(c.state)           # nothing left out


def test_model_surface(case):
    c = case
    m = c.model32
    assert isinstance(m, resnet.ResNet) and m.arch == c.arch and not m.training
    assert resnet.num_parameters(m) == {"resnet18": 11_689_512, "resnet50": 25_557_032}[c.arch]  # torchvision's counts
    assert m.weight_layers[0] == "conv1" and m.weight_layers[-1] == "fc"
    assert m.config.fc == [] and m.config.num_classes == 1000 and m.config.input_size == (224, 224)
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert all(p.dtype == np.float64 for p in c.model64.parameters())


def test_logits_float64_and_float32(case):
    c = case
    with mg.no_grad():
        ours64 = c.model64(c.x).data
        ours32 = c.model32(c.x.astype(np.float32)).data
    assert ours64.dtype == np.float64 and ours32.dtype == np.float32
    assert np.abs(c.ref_logits).max() > 1.0                                    # nothing vanished
    assert rel_err(ours64, c.ref_logits) <= 1e-12, f"received {ours64[0, :4]}, expected {c.ref_logits[0, :4]}"
    assert rel_err(ours32, c.ref_logits) <= 1e-4, f"received {ours32[0, :4]}, expected {c.ref_logits[0, :4]}"


@pytest.mark.parametrize("rule", RULES)
def test_input_gradient_under_each_rule(case, rule):
    c = case
    ref = reference_gradient(c, rule)
    ours64 = mg.backend.to_numpy(saliency.input_gradient(c.model64, c.x, c.target, rule=rule))
    ours32 = mg.backend.to_numpy(saliency.input_gradient(c.model32, c.x.astype(np.float32), c.target, rule=rule))
    assert ours64.dtype == np.float64 and ours32.dtype == np.float32
    assert np.abs(ref).max() > 0
    assert rel_err(ours64, ref) <= 1e-12, f"{rule}: received {ours64.ravel()[:4]}, expected {ref.ravel()[:4]}"
    assert rel_err(ours32, ref) <= 1e-4, f"{rule}: received {ours32.ravel()[:4]}, expected {ref.ravel()[:4]}"
    if rule != "gradient" and c.arch == "resnet18":
        # A reference that applies the rule only at some ReLU calls is far from ours: this test can
        # fail, and our rule reaches the ReLUs inside the blocks (where torchvision reuses one ReLU
        # module) and after the additions, not only the stem's. Shown once, on ResNet-18.
        for where in (("stem",), ("stem", "inner"), ("stem", "after_add")):
            assert rel_err(ours64, reference_gradient(c, rule, where)) > 1e-2, f"{rule} only at {where} agrees"
    if rule == "guided" and c.arch == "resnet18":
        with mg.use_ops("simple"):                      # the reading tier runs the same network (measured 3e-16)
            simple = mg.backend.to_numpy(saliency.input_gradient(c.model64, c.x, c.target, rule=rule))
        assert rel_err(simple, ref) <= 1e-12


NAMES = ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.bn2", "layer1", "layer2.0.downsample.0",
         "layer2.0.downsample.1", "layer2.0", "layer3", "layer4.1", "layer4", "avgpool", "fc"]


def test_forward_until_matches_torch_intermediates(case):
    c = case
    taps = {}
    with torch.no_grad():
        c.torch64(torch.from_numpy(c.x), taps=taps)
    names = NAMES + (["layer3.5.conv3", "layer3.5.bn3"] if c.arch == "resnet50" else [])
    assert set(taps) == set(c.model64.layer_names)                            # the same table
    with mg.no_grad():
        got = c.model64(c.x, until=names)
        assert set(got) == set(names)
        for name in names:
            ref = taps[name].numpy()
            assert got[name].shape == ref.shape, name
            assert rel_err(got[name].data, ref) <= 1e-12, name
        for name in ("relu", "layer2.0.downsample.1", "layer3"):                   # stops there (asked alone,
            assert rel_err(c.model64(c.x, until=name).data, got[name].data) <= 1e-12, name   # the stem folds)
    with pytest.raises(ValueError, match=r"unknown layer 'layer9': this resnet\d+ has conv1, bn1"):
        c.model64(c.x, until="layer9")
