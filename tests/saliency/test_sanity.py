"""Cascading model randomisation (saliency/sanity.py) and scripts/sanity_check.py."""
import json

import numpy as np
import pytest

from models import shapes, vgg
from saliency import sanity

from ..cli import call, one_error_line
from .twin import images, random_vgg


@pytest.fixture(scope="module")
def net():
    return random_vgg(blocks=((8, 8), (16,)), fc=(32,), classes=10, size=24, seed=3)


def test_cascade_shape_first_stage_and_restore(net):
    batch = images(3, 24, seed=2)
    before = {n: getattr(net, n).weight.data.copy() for n in net.weight_layers}
    result, maps = sanity.cascading_randomisation(net, batch, [1, 4, 7], smooth_n=3)
    assert result["stages"] == ["none", "fc4", "fc3", "conv2_1", "conv1_2", "conv1_1"]
    assert set(result["methods"]) == set(sanity.METHODS)
    for m, values in result["methods"].items():
        assert set(values) == {"spearman_abs", "spearman", "ssim"}
        for v in values.values():
            assert len(v) == len(result["stages"])
        # the trained network compared with itself: exactly 1 (float rounding of spearmanr and SSIM)
        assert values["spearman_abs"][0] == pytest.approx(1.0, abs=1e-9)
        if m in sanity.GRADIENT_METHODS:
            assert values["spearman"][0] == pytest.approx(1.0, abs=1e-9)
        else:                                                    # Grad-CAM's maps have no sign
            assert values["spearman"] == [None] * len(result["stages"])
        assert values["ssim"][0] == pytest.approx(1.0, abs=1e-9)
        assert maps[m][0].shape == (3, 24, 24)
    for n, w in before.items():                                  # the weights are restored
        np.testing.assert_array_equal(getattr(net, n).weight.data, w)


def test_randomising_changes_the_gradient(net):
    batch = images(2, 24, seed=4)
    result, _ = sanity.cascading_randomisation(net, batch, [0, 5], methods=("gradient",))
    g = result["methods"]["gradient"]
    # re-initialising every layer must decorrelate the gradient from the trained network's: a method
    # that passed this with rank correlation near 1 would not depend on the weights
    assert g["spearman_abs"][-1] < 0.6 and g["spearman"][-1] < 0.6, g
    assert min(g["spearman_abs"][1:]) < g["spearman_abs"][0] - 0.3


def test_grad_cam_is_in_the_cascade_and_changes(net):
    """Grad-CAM depends on the weights too: with every layer re-initialised its map no longer ranks
    the pixels as the trained network's does. Compared as maps: no signed Spearman."""
    assert {"gradcam", "guided-gradcam"} <= set(sanity.METHODS)
    batch = images(2, 24, seed=4)
    result, maps = sanity.cascading_randomisation(net, batch, [0, 5], methods=("gradcam", "guided-gradcam"))
    for m in ("gradcam", "guided-gradcam"):
        v = result["methods"][m]
        assert v["spearman_abs"][0] == pytest.approx(1.0) and v["ssim"][0] == pytest.approx(1.0)
        assert v["spearman"] == [None] * 6 and min(v["spearman_abs"][1:]) < 0.9, v
        assert maps[m][0].shape == (2, 24, 24) and (maps[m][0] >= 0).all()
    c = sanity.compare(maps["gradcam"][0][0], maps["gradcam"][0][0])        # (H, W) maps: no signed rank
    assert c["spearman"] is None and c["spearman_abs"] == pytest.approx(1.0) and c["ssim"] == pytest.approx(1.0)


def test_reinitialise_is_he_with_zero_bias():
    model = random_vgg(blocks=((64,),), fc=(256,), classes=10, size=8, seed=1)
    sanity.reinitialise(model.fc2, np.random.default_rng(0))
    w = model.fc2.weight.data
    assert w.dtype == np.float32 and not model.fc2.bias.data.any()
    fan_in = w.shape[1]
    assert np.std(w) == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)   # 65536 samples: ~0.3% std error


def test_compare_constant_map_is_zero_rank_correlation():
    g = np.random.default_rng(0).standard_normal((3, 16, 16)).astype(np.float32)
    c = sanity.compare(g, np.zeros_like(g))
    assert c["spearman_abs"] == 0.0 and c["spearman"] == 0.0


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), classes=10, size=32)
    model.classes = list(shapes.CLASSES)
    model.meta = dict(model.meta, resize=32, crop=32, scale=1.0)
    path = tmp_path_factory.mktemp("sanity") / "small.h5"
    vgg.save(model, path)
    return path


def test_script_writes_the_json_and_figures(weights, tmp_path):
    assert call("sanity_check", "--weights", weights, "--out", tmp_path, "--n-images", 2, "--smooth-n", 2) == 0
    data = json.loads((tmp_path / "sanity_check.json").read_text())
    assert set(data) == {"stages", "methods"}
    assert data["stages"] == ["none", "fc4", "fc3", "conv2_1", "conv1_1"]
    assert set(data["methods"]) == set(sanity.METHODS)                       # all six by default
    for m, values in data["methods"].items():
        assert set(values) == {"spearman_abs", "spearman", "ssim"}
        if m in ("gradcam", "guided-gradcam"):
            assert values.pop("spearman") == [None] * 5                      # null: not applicable
        assert all(len(v) == 5 and v[0] == pytest.approx(1.0) for v in values.values())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["sanity_check.json", "sanity_check_curves.png", "sanity_check_maps.png"]


@pytest.mark.parametrize("args,pattern", [
    (["--methods", "gradient,lrp"], r"unknown method lrp"),
    (["--n-images", "0"], r"at least 1"),
    (["--image", "{tmp}/x.jpg"], r"x\.jpg"),
    (["--target", "dodecahedron"], r"dodecahedron"),
    (["--weights", "{tmp}/missing.h5"], r"missing\.h5"),
])
def test_bad_input(weights, tmp_path, capsys, args, pattern):
    import re
    (tmp_path / "x.jpg").write_text("not an image")
    out = tmp_path / "out"
    argv = [a.format(tmp=tmp_path) for a in args]
    if "--weights" not in argv:
        argv += ["--weights", str(weights)]
    assert call("sanity_check", "--out", out, "--n-images", 1, "--smooth-n", 1, *argv) == 2
    assert re.search(pattern, one_error_line(capsys.readouterr().err))
    assert not out.exists() or not list(out.iterdir())


def test_needs_images_for_another_task(tmp_path, capsys):
    model = random_vgg(blocks=((8,),), fc=(16,), classes=3, size=16)
    model.classes = ["a", "b", "c"]
    vgg.save(model, tmp_path / "w.h5")
    assert call("sanity_check", "--weights", tmp_path / "w.h5", "--out", tmp_path / "o") == 2
    assert "give --image" in one_error_line(capsys.readouterr().err)
