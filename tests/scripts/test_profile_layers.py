"""scripts/profile_layers.py: how it cuts a network into steps, what it times on each engine, and its
table (no timed assertions)."""
import importlib.util

import numpy as np
import pytest

from ..cli import load_script, one_error_line, subprocess_run


@pytest.fixture(scope="module")
def prof():
    return load_script("profile_layers")


def tiny_vgg():
    from models import vgg
    return vgg.build(vgg.VGGConfig("tiny", [[4], [6, 6]], fc=[8], num_classes=3, input_size=(8, 8)), seed=0)


def test_steps_fuse_each_conv_with_its_relu_and_each_fc_with_what_follows(prof):
    from models import vgg
    model = vgg.build("vgg16", seed=0)
    steps = prof.group_layers(model.layer_names)
    assert [name for name, _ in steps][:3] == ["conv1_1", "conv1_2", "pool1"]
    assert steps[0] == ("conv1_1", ["conv1_1", "relu1_1"])
    assert ("fc6", ["flatten", "fc6", "relu6", "drop6"]) in steps
    assert steps[-1] == ("fc8", ["fc8"])
    assert [n for _, layers in steps for n in layers] == list(model.layer_names)   # every layer, once, in order


@pytest.mark.parametrize("case", ["forward", "saliency", "train"])
def test_profile_times_every_step_on_both_engines(prof, case):
    """Each step gets a forward time, and a backward time unless the case is a forward; the model's
    weights need a gradient only when training."""
    model = tiny_vgg()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    engines = [prof.Ours(model)]
    if importlib.util.find_spec("torch") is not None:
        engines.append(prof.Torch(model))
    for engine in engines:
        result = prof.profile(engine, model, x, case, repeats=1)
        names = [row[0] for row in result["steps"]]
        assert names == ["conv1_1", "pool1", "conv2_1", "conv2_2", "pool2", "fc3", "fc4"]
        for _, fwd, bwd in result["steps"]:
            assert fwd > 0
            assert (bwd is None) == (case == "forward") and (bwd is None or bwd > 0)
    assert all(p.requires_grad == (case == "train") for p in model.parameters())


def test_torch_layers_compute_what_ours_do(prof):
    torch = pytest.importorskip("torch")
    model = tiny_vgg().eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    layers = prof.torch_layers(model)
    assert list(layers) == list(model.layer_names)
    t = torch.from_numpy(x)
    with torch.no_grad():
        for name in model.layer_names:
            t = layers[name](t)
    np.testing.assert_allclose(t.numpy(), model(x).data, rtol=1e-4, atol=1e-5)


def test_table_gives_ratios_shares_and_the_whole_pass(prof):
    ours = {"steps": [{"layer": "conv1_1", "forward_s": 0.002, "backward_s": 0.004},
                      {"layer": "pool1", "forward_s": 0.001, "backward_s": 0.001}], "whole_s": 0.01}
    torch = {"steps": [{"layer": "conv1_1", "forward_s": 0.001, "backward_s": 0.004},
                       {"layer": "pool1", "forward_s": 0.002, "backward_s": 0.001}], "whole_s": 0.005}
    lines = prof.table("saliency", ours, torch).splitlines()
    assert lines[3] == "| conv1_1 | 2.0 | 1.0 | 2.00 | 4.0 | 4.0 | 1.00 | 6.0 | 5.0 | 1.20 | 75% |"
    assert lines[-2] == "| sum of layers |  |  |  |  |  |  | 8.0 | 8.0 | 1.00 |  |"
    assert lines[-1] == "| whole pass |  |  |  |  |  |  | 10.0 | 5.0 | 2.00 |  |"
    forward = {"steps": [dict(s, backward_s=None) for s in ours["steps"]], "whole_s": 0.003}
    assert prof.table("forward", forward, None).splitlines()[-1] == "| whole pass | 3.0 | — | — |  |"


@pytest.mark.parametrize("argv, message", [(["--cases", "forward,nope"], "unknown case 'nope'"),
                                           (["--repeats", "0"], "--repeats must be at least 1")])
def test_bad_arguments_give_one_line(argv, message):
    r = subprocess_run("profile_layers", *argv)
    assert r.returncode == 2
    assert message in one_error_line(r.stderr)
