"""The saliency scripts end to end on small weights: the files they write, and one-line errors."""
import numpy as np
import pytest
from PIL import Image

from models import shapes, vgg

from ..cli import call, one_error_line, subprocess_run
from ..saliency.twin import random_vgg


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scripts")
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), classes=10, size=32)
    model.classes = list(shapes.CLASSES)
    model.meta = dict(model.meta, resize=40, crop=32, scale=1.0)      # 10 crops of 32 in 40x40
    weights = tmp / "small.h5"
    vgg.save(model, weights)
    return weights, shape_images(tmp), tmp


def shape_images(folder, n=2):
    """``n`` shapes images of 48x48 written as folder/shape{k}.png; their paths."""
    images, _, _, _ = shapes.make_dataset(n, seed=5, size=48)
    paths = [folder / f"shape{k}.png" for k in range(n)]
    for path, im in zip(paths, images):
        Image.fromarray(im).save(path)
    return paths


def pngs(folder):
    files = sorted(p.name for p in folder.iterdir())
    assert not [f for f in files if f.startswith(".") or f.endswith(".tmp")], files   # nothing half-written
    for f in files:
        if f.endswith(".png"):
            with Image.open(folder / f) as im:
                im.load()
    return files


@pytest.mark.parametrize("method,crops", [("gradient", 1), ("deconvnet", 1), ("guided", 10), ("smoothgrad", 1),
                                          ("gradcam", 1), ("guided-gradcam", 1), ("gradcam", 10)])
def test_saliency_map(setup, tmp_path, capsys, method, crops):
    weights, paths, _ = setup
    code = call("saliency_map", "--weights", weights, "--image", *paths, "--method", method, "--crops", crops,
                "--smooth-n", 3, "--target", "star", "--out", tmp_path, "--save-npy")
    assert code == 0
    tag = f"{method}" + ("_10crops" if crops == 10 else "")
    files = pngs(tmp_path)
    assert files == sorted(f"shape{k}_{tag}{ext}" for k in (0, 1) for ext in (".png", "_map.png", ".npy"))
    smap = np.load(tmp_path / f"shape0_{tag}.npy")
    assert smap.shape == ((40, 40) if crops == 10 else (32, 32)) and smap.dtype == np.float32
    assert (smap >= 0).all() and smap.max() > 0
    assert "class 4 star" in capsys.readouterr().out


def test_class_model(setup, tmp_path, capsys):
    weights, _, _ = setup
    assert call("class_model", "--weights", weights, "--target", "0,ring", "--steps", 6, "--gif",
                "--out", tmp_path) == 0
    files = pngs(tmp_path)
    for stem in ("class_model_0_circle", "class_model_1_ring"):
        assert {f"{stem}.png", f"{stem}.gif"} <= set(files)
    assert {"class_models.png", "class_model_scores.png"} <= set(files)
    out = capsys.readouterr().out
    assert "2 class(es) x 1 setting(s) x 6 steps: about" in out       # the time estimate comes first
    assert out.index("about") < out.index("class 0 circle: score")


def test_class_model_tutorial_sweep_and_stall_note(setup, tmp_path, capsys):
    weights, _, _ = setup
    assert call("class_model", "--weights", weights, "--target", "star", "--preset", "tutorial", "--sweep",
                "--steps", 3, "--snapshot-every", 1, "--out", tmp_path) == 0
    files = pngs(tmp_path)
    assert "class_model_sweep_4_star.png" in files
    for p in (1, 2):
        for lam in ("0.001", "0.1", "1"):
            stem = f"class_model_4_star_tutorial_p{p}_lam{lam}"
            assert {f"{stem}.png", f"{stem}.gif"} <= set(files)
    # 3 steps of a random net: with p 1 and lambda 0.1 or 1 the score falls, and the note says so
    assert "the score fell" in capsys.readouterr().err


def test_class_model_many_classes_default_to_a_stated_selection(tmp_path, capsys):
    model = random_vgg(blocks=((4,),), fc=(8,), classes=30, size=16)
    model.classes = [f"thing{i}" for i in range(30)]
    vgg.save(model, tmp_path / "w30.h5")
    assert call("class_model", "--weights", tmp_path / "w30.h5", "--steps", 2, "--paper", "--out", tmp_path / "o") == 0
    err = capsys.readouterr().err
    assert "30 classes: making class models of 3 of them only" in err
    assert len(list((tmp_path / "o").glob("class_model_*_thing*.png"))) == 3


def test_deconvnet_prints_the_equivalence(setup, tmp_path, capsys):
    weights, paths, _ = setup
    assert call("deconvnet", "--weights", weights, "--image", paths[0], "--out", tmp_path, "--save-npy") == 0
    out = capsys.readouterr().out
    assert "no ReLUs (the network with every ReLU taken out): all three rules identical (max |difference| 0)" in out
    assert "from conv1_1 (the first layer, before any ReLU): all three rules identical (max |difference| 0)" in out
    assert "ReLU units whose masks differ" in out
    assert "shape0_rules.png" in pngs(tmp_path)
    assert call("deconvnet", "--weights", weights, "--image", paths[0], "--out", tmp_path,
                "--layer", "conv2_1", "--channel", 3) == 0
    assert "from layer conv2_1 channel 3" in capsys.readouterr().out


def test_localise(setup, tmp_path, capsys):
    weights, paths, _ = setup
    assert call("localise", "--weights", weights, "--image", *paths, "--out", tmp_path, "--save-npy") == 0
    files = pngs(tmp_path)
    assert "shape0_localise.png" in files and "shape1_localise_mask.npy" in files
    mask = np.load(tmp_path / "shape0_localise_mask.npy")
    assert mask.dtype == bool and mask.shape == (32, 32) and mask.any()
    assert "box (x0, y0, x1, y1) = (" in capsys.readouterr().out


BAD = [
    ("not-an-image", ["--image", "{tmp}/x.jpg"], r"x\.jpg"),
    ("missing-image", ["--image", "{tmp}/nope.png"], r"nope\.png"),
    ("missing-weights", ["--weights", "{tmp}/none.h5"], r"none\.h5"),
    ("truncated-weights", ["--weights", "{tmp}/cut.h5"], r"truncated or corrupt"),
    ("index-out-of-range", ["--target", "10"], r"class index 10 is out of range"),
    ("unknown-class", ["--target", "hexagon"], r"'hexagon' is not a class name"),
    ("gpu", ["--device", "gpu"], r"no usable GPU"),
    ("out-is-a-file", ["--out", "{tmp}/x.jpg"], r"exists and is not a folder"),
]


CASES = [(script, *bad) for script in ("saliency_map", "deconvnet", "localise", "class_model") for bad in BAD
         if not (script == "class_model" and "image" in bad[0])]          # class_model takes no image


@pytest.mark.parametrize("script,case,args,pattern", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_input_is_one_line_and_exit_2(setup, tmp_path, capsys, script, case, args, pattern):
    import re

    import minigrad as mg
    weights, paths, _ = setup
    if case == "gpu" and mg.gpu_available():
        pytest.skip("a GPU is present")
    (tmp_path / "x.jpg").write_text("not an image")
    data = weights.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    argv = {"--weights": str(weights), "--out": str(out)}
    if script != "class_model":
        argv["--image"] = str(paths[0])
    extra = []
    for k in range(0, len(args), 2):
        value = args[k + 1].format(tmp=tmp_path)
        if args[k] in argv:
            argv[args[k]] = value
        else:
            extra += [args[k], value]
    flat = [a for kv in argv.items() for a in kv] + extra
    if script == "class_model":
        flat += ["--steps", "2"]
    assert call(script, *flat) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, one_error_line(err)), err
    if out.exists():                                          # nothing half-written
        assert not list(out.iterdir()), list(out.iterdir())


def test_help_and_a_real_subprocess(setup, tmp_path):
    weights, paths, _ = setup
    for script in ("saliency_map", "class_model", "deconvnet", "localise"):
        r = subprocess_run(script, "--help")
        assert r.returncode == 0 and "--weights" in r.stdout and "--device" in r.stdout
    r = subprocess_run("saliency_map", "--weights", weights, "--image", tmp_path / "missing.png")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if "error:" in line]) == 1


def test_network_without_classifier_is_refused(tmp_path, capsys):
    model = vgg.build(vgg.VGGConfig("notop", [[4], [8]], fc=None, input_size=(16, 16)), seed=0)
    weights = tmp_path / "notop.h5"
    vgg.save(model, weights)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    for script in ("saliency_map", "localise", "deconvnet"):
        assert call(script, "--weights", weights, "--image", image, "--out", tmp_path / "o") == 2
        assert "has no classifier" in one_error_line(capsys.readouterr().err)


def test_weights_with_a_malformed_config_are_one_line(setup, tmp_path, capsys):
    import h5py
    weights, paths, _ = setup
    bad = tmp_path / "bad.h5"
    bad.write_bytes(weights.read_bytes())
    with h5py.File(bad, "r+") as f:
        f.attrs["config"] = '{"blocks": 5}'
    assert call("saliency_map", "--weights", bad, "--image", paths[0], "--out", tmp_path / "o") == 2
    assert "config" in one_error_line(capsys.readouterr().err)


def test_every_script_on_a_vgg16(tmp_path, capsys):
    """The scripts on a full-size VGG16 (random weights, ImageNet's 1000 classes and preprocessing),
    on a real photograph bigger than the crop: the setting of the paper's figures."""
    from skimage import data

    from models import imagenet
    model = vgg.build("vgg16", seed=0).eval()
    model.classes, model.wnids = imagenet.names(), imagenet.wnids()
    weights = tmp_path / "vgg16.h5"
    vgg.save(model, weights)
    photo = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(photo)                   # 300x451 RGB
    out = tmp_path / "out"
    assert call("saliency_map", "--weights", weights, "--image", photo, "--target", "tabby", "--out", out) == 0
    assert call("localise", "--weights", weights, "--image", photo, "--target", 281, "--out", out) == 0
    assert call("deconvnet", "--weights", weights, "--image", photo, "--out", out) == 0
    assert call("class_model", "--weights", weights, "--target", "flamingo", "--steps", 2, "--out", out) == 0
    files = pngs(out)
    for name in ("chelsea_gradient.png", "chelsea_gradient_map.png", "chelsea_localise.png", "chelsea_rules.png",
                 "class_model_130_flamingo.png"):
        assert name in files
    with Image.open(out / "chelsea_gradient_map.png") as im:
        assert im.size == (224, 224)
    text = capsys.readouterr().out
    assert "class 281 tabby" in text and "all three rules identical" in text


@pytest.mark.parametrize("args,pattern", [
    (["--sweep"], r"--sweep belongs to --preset tutorial"),
    (["--paper", "--preset", "tutorial"], r"contradict"),
    (["--preset", "tutorial", "--l2", "1"], r"use --lam and --p"),
    (["--steps", "0"], r"at least 1"),
    (["--lam", "-1", "--preset", "tutorial"], r">= 0"),
])
def test_class_model_bad_options(setup, tmp_path, capsys, args, pattern):
    import re
    weights, _, _ = setup
    out = tmp_path / "out"
    assert call("class_model", "--weights", weights, "--target", "0", "--out", out, *args) == 2
    assert re.search(pattern, one_error_line(capsys.readouterr().err))
    assert not out.exists() or not list(out.iterdir())


def test_localisation_tools_take_gradcam(setup, tmp_path):
    """evaluate_localisation.py (10 crops: each crop's Grad-CAM averaged) and localisation_benchmark.py
    accept gradcam and guided-gradcam (saliency.maps.METHODS), in a tiny run."""
    import csv
    import json
    weights, _, _ = setup
    data = tmp_path / "set"
    assert call("make_shapes_dataset", "--n", 2, "--seed", 7, "--out", data) == 0
    assert call("evaluate_localisation", "--images", data / "images", "--annotations", data / "annotations",
                "--weights", weights, "--crops", 10, "--top", 1, "--method", "gradcam,guided-gradcam",
                "--scheduler", "synchronous", "--out", tmp_path / "eval") == 0
    for method in ("gradcam", "guided-gradcam"):
        rows = list(csv.DictReader((tmp_path / "eval" / method / "results.csv").open()))
        assert len(rows) == 2 and all(0 <= int(r["x0"]) < int(r["x1"]) <= 64 for r in rows)
        assert json.loads((tmp_path / "eval" / method / "summary.json").read_text())["n_images"] == 2
    assert call("localisation_benchmark", "--weights", weights, "--n", 2, "--methods", "gradcam,guided-gradcam",
                "--csv", tmp_path / "loc.csv") == 0
    table = {r["method"]: r for r in csv.DictReader((tmp_path / "loc.csv").open())}
    assert {"gradcam", "guided-gradcam"} <= set(table)
    assert 0 <= float(table["gradcam"]["localisation_error"]) <= 1
