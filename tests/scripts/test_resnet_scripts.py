"""Every script on ResNet weights: a small ResNet with random batch norms (basic blocks 1-1, 32 px) for
the shapes classes, and a 1000-class ResNet at 224 (torchvision's stem, a few channels) for the
ImageNet settings: the tutorial's recipe and page, class names, a torchvision .pth read directly."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from models import imagenet, resnet, shapes

from ..cli import call, one_error_line
from ..saliency.twin import random_resnet
from .test_saliency_scripts import pngs, shape_images


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resnet_scripts")
    model = random_resnet("basic", depths=(1, 1), widths=(8, 16), size=32, seed=4)
    model.classes = list(shapes.CLASSES)
    model.meta = dict(model.meta, resize=40, crop=32)                 # 10 crops of 32 in 40x40
    weights = tmp / "small_resnet.h5"
    resnet.save(model, weights)
    return weights, shape_images(tmp), tmp


@pytest.fixture(scope="module")
def imagenet_resnet(tmp_path_factory):
    """A 1000-class bottleneck ResNet at 224 with ImageNet's names, and a photo (skimage's chelsea)."""
    from skimage import data
    tmp = tmp_path_factory.mktemp("resnet224")
    model = random_resnet("bottleneck", depths=(1, 1), widths=(4, 8), stem_width=8, classes=1000, size=224,
                          stem="imagenet", seed=6)
    model.classes, model.wnids = imagenet.names(), imagenet.wnids()
    weights = tmp / "resnet224.h5"
    resnet.save(model, weights)
    photo = tmp / "chelsea.png"
    Image.fromarray(data.chelsea()).save(photo)                    # 300x451 RGB
    return weights, photo, model


@pytest.mark.parametrize("method,crops", [("gradient", 1), ("deconvnet", 1), ("guided", 10), ("smoothgrad", 1)])
def test_saliency_map(setup, tmp_path, capsys, method, crops):
    weights, paths, _ = setup
    assert call("saliency_map", "--weights", weights, "--image", *paths, "--method", method, "--crops", crops,
                "--smooth-n", 3, "--target", "star", "--out", tmp_path, "--save-npy") == 0
    tag = method + ("_10crops" if crops == 10 else "")
    assert pngs(tmp_path) == sorted(f"shape{k}_{tag}{ext}" for k in (0, 1) for ext in (".png", "_map.png", ".npy"))
    smap = np.load(tmp_path / f"shape0_{tag}.npy")
    assert smap.shape == ((40, 40) if crops == 10 else (32, 32)) and smap.dtype == np.float32
    assert np.isfinite(smap).all() and (smap >= 0).all() and smap.max() > 0
    assert "class 4 star" in capsys.readouterr().out


def test_classify_and_localise(setup, tmp_path, capsys):
    weights, paths, _ = setup
    assert call("classify", "--weights", weights, "--image", *paths, "--top", 3, "--out", tmp_path) == 0
    rows = list(csv.DictReader((tmp_path / "classify.csv").open()))
    assert len(rows) == 6 and {r["class"] for r in rows} <= set(shapes.CLASSES)
    assert sum(float(r["probability"]) for r in rows[:3]) <= 1.0 + 1e-6
    assert call("localise", "--weights", weights, "--image", *paths, "--out", tmp_path, "--save-npy") == 0
    mask = np.load(tmp_path / "shape0_localise_mask.npy")
    assert mask.dtype == bool and mask.shape == (32, 32) and mask.any()
    assert "box (x0, y0, x1, y1) = (" in capsys.readouterr().out


@pytest.mark.parametrize("layer", [None, "layer2.0", "layer1.0.conv2", "layer2"])
def test_deconvnet_from_the_score_and_from_resnet_layers(setup, tmp_path, capsys, layer):
    weights, paths, _ = setup
    extra = [] if layer is None else ["--layer", layer, "--channel", 1]
    assert call("deconvnet", "--weights", weights, "--image", paths[0], "--out", tmp_path, "--save-npy", *extra) == 0
    out = capsys.readouterr().out
    assert "no ReLUs (the network with every ReLU taken out): all three rules identical (max |difference| 0)" in out
    assert "from conv1 (the first layer, before any ReLU): all three rules identical (max |difference| 0)" in out
    tag = "shape0_rules" + (f"_{layer}" if layer else "")
    assert f"{tag}.png" in pngs(tmp_path)
    for rule in ("gradient", "deconvnet", "guided"):
        g = np.load(tmp_path / f"{tag}_{rule}.npy")
        assert g.shape == (3, 32, 32) and np.isfinite(g).all() and np.abs(g).max() > 0


def test_deconvnet_unknown_layer_is_one_line(setup, tmp_path, capsys):
    weights, paths, _ = setup
    assert call("deconvnet", "--weights", weights, "--image", paths[0], "--out", tmp_path, "--layer", "conv5_3") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--layer conv5_3: unknown layer 'conv5_3'" in line and "layer2.0.downsample.0" in line


def test_class_model_presets(setup, tmp_path, capsys):
    weights, _, _ = setup
    assert call("class_model", "--weights", weights, "--target", "star", "--steps", 4, "--out", tmp_path / "d") == 0
    assert call("class_model", "--weights", weights, "--target", "star", "--preset", "tutorial", "--steps", 12,
                "--save-npy", "--out", tmp_path / "t") == 0
    stem = "class_model_4_star_tutorial"
    assert {f"{stem}.png", f"{stem}.gif", f"{stem}.npy"} <= set(pngs(tmp_path / "t"))
    image = np.load(tmp_path / "t" / f"{stem}.npy")
    assert image.shape == (3, 32, 32) and image.dtype == np.float32 and np.abs(image).max() > 0
    assert call("class_model", "--weights", weights, "--target", "star", "--preset", "lucid", "--steps", 3,
                "--out", tmp_path / "l") == 0
    assert "class_model_4_star_lucid.png" in set(pngs(tmp_path / "l"))
    assert call("class_model", "--weights", weights, "--target", "star", "--l2", "0.001", "--steps", 3,
                "--out", tmp_path / "x") == 2
    assert "--preset lucid or --paper" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_sanity_check_by_block_and_by_layer(setup, tmp_path):
    weights, paths, _ = setup
    assert call("sanity_check", "--weights", weights, "--image", *paths, "--methods", "gradient,guided",
                "--out", tmp_path / "b") == 0
    data = json.loads((tmp_path / "b" / "sanity_check.json").read_text())
    assert data["stages"] == ["none", "fc", "layer2.0", "layer1.0", "conv1"]
    for values in data["methods"].values():
        assert values["spearman_abs"][0] == pytest.approx(1.0) and len(values["ssim"]) == 5
        assert all(np.isfinite(v).all() for v in values.values())
    assert call("sanity_check", "--weights", weights, "--image", paths[0], "--methods", "gradient",
                "--stages", "layer", "--out", tmp_path / "l") == 0
    data = json.loads((tmp_path / "l" / "sanity_check.json").read_text())
    assert data["stages"][:3] == ["none", "fc", "layer2.0.downsample.0"] and len(data["stages"]) == 8


def test_evaluate_localisation_and_the_localisation_benchmark(setup, tmp_path, capsys):
    weights, _, _ = setup
    data = tmp_path / "set"
    assert call("make_shapes_dataset", "--n", 3, "--seed", 7, "--out", data) == 0
    assert call("evaluate_localisation", "--images", data / "images", "--annotations", data / "annotations",
                "--weights", weights, "--crops", 10, "--top", 2, "--method", "gradient,guided",
                "--scheduler", "synchronous", "--out", tmp_path / "eval") == 0
    for method in ("gradient", "guided"):                          # several methods: OUT/METHOD/
        rows = list(csv.DictReader((tmp_path / "eval" / method / "results.csv").open()))
        assert len(rows) == 3 * 2                                   # 3 images, top 2
        for r in rows:
            assert 0 <= int(r["x0"]) < int(r["x1"]) <= 64 and 0 <= int(r["y0"]) < int(r["y1"]) <= 64
        assert json.loads((tmp_path / "eval" / method / "summary.json").read_text())["n_images"] == 3
    assert (tmp_path / "eval" / "methods.png").exists()
    assert call("localisation_benchmark", "--weights", weights, "--n", 3, "--methods", "gradient,smoothgrad",
                "--smooth-n", 2, "--csv", tmp_path / "loc.csv") == 0
    table = {r["method"]: r for r in csv.DictReader((tmp_path / "loc.csv").open())}
    assert {"gradient", "smoothgrad", "baseline-centred-box"} <= set(table)
    assert 0 <= float(table["gradient"]["localisation_error"]) <= 1


def test_tutorial_preset_at_224_on_a_1000_class_resnet(imagenet_resnet, tmp_path, capsys):
    weights, _, _ = imagenet_resnet
    assert call("class_model", "--weights", weights, "--preset", "tutorial", "--target", "flamingo", "--steps", 10,
                "--out", tmp_path) == 0
    assert {"class_model_130_flamingo_tutorial.png", "class_model_130_flamingo_tutorial.gif"} <= set(pngs(tmp_path))
    assert "class 130 flamingo: score" in capsys.readouterr().out


def test_tutorial_page(imagenet_resnet, tmp_path, capsys):
    weights, photo, _ = imagenet_resnet
    assert call("tutorial", "--weights", weights, "--image", photo, "--steps", 11, "--save-npy", "--out", tmp_path) == 0
    files = pngs(tmp_path)
    stem = "tutorial_class_model_130_flamingo"                          # flamingo: the default on 1000 classes
    assert {"tutorial.png", "tutorial_chelsea_saliency.png", "tutorial_chelsea_saliency.npy", f"{stem}.png",
            f"{stem}.gif", f"{stem}.npy"} <= set(files)
    smap = np.load(tmp_path / "tutorial_chelsea_saliency.npy")
    assert smap.shape == (224, 224) and np.isfinite(smap).all() and smap.max() > 0
    image = np.load(tmp_path / f"{stem}.npy")
    assert image.shape == (3, 224, 224) and image.dtype == np.float32
    with Image.open(tmp_path / f"{stem}.gif") as gif:
        assert gif.n_frames == 1                                        # a frame every 10 steps
    out = capsys.readouterr().out
    assert "class model of 130 flamingo: 11 steps, about" in out and "the page:" in out


@pytest.mark.parametrize("args,pattern", [
    (["--class", "hexagon"], r"'hexagon' is not a class name"),
    (["--class", "1000"], r"out of range"),
    (["--steps", "0"], r"at least 1"),
    (["--image", "{tmp}/none.png"], r"none\.png"),
])
def test_tutorial_bad_input(imagenet_resnet, tmp_path, capsys, args, pattern):
    import re
    weights, photo, _ = imagenet_resnet
    argv = [a.format(tmp=tmp_path) for a in args]
    if "--image" not in argv:
        argv += ["--image", str(photo)]
    out = tmp_path / "out"
    assert call("tutorial", "--weights", weights, "--out", out, *argv) == 2
    assert re.search(pattern, one_error_line(capsys.readouterr().err))
    assert not out.exists() or not list(out.iterdir())


def test_a_torchvision_pth_runs_without_converting(imagenet_resnet, tmp_path, capsys):
    """A state dict saved by PyTorch with torchvision's names, given to the scripts as it is."""
    torch = pytest.importorskip("torch")
    _, photo, model = imagenet_resnet
    pth = tmp_path / "resnet.pth"
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}, pth)
    assert call("classify", "--weights", pth, "--image", photo, "--top", 2) == 0
    assert call("saliency_map", "--weights", pth, "--image", photo, "--target", "tabby", "--out", tmp_path) == 0
    assert "class 281 tabby" in capsys.readouterr().out
