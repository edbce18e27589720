"""What a new user meets at the edges of the scripts: a bad MINIGRAD_OPS, option errors that name the
option, no empty --out left behind, boxes that say whose pixels they are in, notes for the shipped
model and for tiny images, gpu_check.sh --help, the deconvnet equivalence explained, and methods.png."""
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from models import preprocess, shapes

from ..cli import ROOT, SCRIPTS, call, load_script, one_error_line
from ..saliency.twin import save_small_shapes_vgg

SCRIPT_NAMES = sorted(p.stem for p in SCRIPTS.glob("*.py") if not p.stem.startswith("_"))
SHIPPED = ROOT / "weights" / "shapes_vgg.h5"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Small VGG weights (32x32 crops of 40x40 resizes) and a 48x48 shapes image."""
    tmp = tmp_path_factory.mktemp("edges")
    weights = save_small_shapes_vgg(tmp / "small.h5", resize=40)
    image = tmp / "shape.png"
    Image.fromarray(shapes.make_dataset(1, seed=5, size=48)[0][0]).save(image)
    return weights, image


# ------------------------------------------------------------------ MINIGRAD_OPS
@pytest.mark.parametrize("script", SCRIPT_NAMES)
def test_a_bad_minigrad_ops_is_one_line_and_exit_2(script):
    r = subprocess.run([sys.executable, str(SCRIPTS / f"{script}.py"), "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=300, env={**_env(), "MINIGRAD_OPS": "simpel"})
    assert r.returncode == 2, (r.returncode, r.stderr)
    line = one_error_line(r.stderr)
    assert line == (f"{script}.py: error: MINIGRAD_OPS: unknown ops tier 'simpel'; choose one of simple, fast")
    assert r.stderr.strip() == line


def test_gpu_check_refuses_a_bad_minigrad_ops_and_has_help():
    script = str(SCRIPTS / "gpu_check.sh")
    bad = subprocess.run(["bash", script], capture_output=True, text=True, timeout=60,
                         env={**_env(), "MINIGRAD_OPS": "simpel"})
    assert bad.returncode == 2 and "MINIGRAD_OPS: unknown ops tier 'simpel'" in one_error_line(bad.stderr)
    for flag in ("--help", "-h"):
        r = subprocess.run(["bash", script, flag], capture_output=True, text=True, timeout=60, env=_env())
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("usage: bash scripts/gpu_check.sh") and "=== versions" not in r.stdout
        assert "smoke test" in r.stdout and "#" not in r.stdout
    r = subprocess.run(["bash", script, "--fast"], capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 2 and "unknown argument --fast" in one_error_line(r.stderr)


def test_the_scripts_know_the_tiers_of_minigrad():
    from minigrad import tiers
    load_script("classify")
    assert sys.modules["_common"].OPS_TIERS == tiers.TIERS


def _env():
    import os
    env = dict(os.environ)
    env.pop("MINIGRAD_OPS", None)
    return env


# ------------------------------------------------------------------ option errors name the option
@pytest.mark.parametrize("script,argv,message", [
    ("make_shapes_dataset", ["--seed", "-3"], "argument --seed: must be a whole number >= 0, got -3"),
    ("sanity_check", ["--seed", "-3"], "argument --seed: must be a whole number >= 0, got -3"),
    ("localisation_benchmark", ["--seed", "-3"], "argument --seed: must be a whole number >= 0, got -3"),
    ("train_shapes", ["--seed", "-3"], "argument --seed: must be a whole number >= 0, got -3"),
    ("class_model", ["--seed", "-3"], "argument --seed: must be a whole number >= 0, got -3"),
    ("demo", ["--steps", "0"], "argument --steps: must be at least 1, got 0"),
    ("localise", ["--components", "0"], "argument --components: must be at least 1, got 0"),
    ("localise", ["--gamma", "-5"], "argument --gamma: must be >= 0, got -5"),
    ("localise", ["--soft", "0.3", "0.5"], "soft and hard quantiles (FG, BG) must nest"),
    ("localisation_benchmark", ["--hard", "0.9", "0.1"], "soft and hard quantiles (FG, BG) must nest"),
    ("deconvnet", ["--layer", "conv2_1", "--channel", "999"],
     "--channel 999 is out of range: layer conv2_1 has 16 channels (0-15)"),
    ("deconvnet", ["--layer", "conv2_1", "--channel", "-1"], "argument --channel: must be a whole number >= 0"),
    ("deconvnet", ["--layer", "fc3", "--channel", "1"], "--channel: layer fc3 gives a vector, not channels"),
    ("tutorial", ["--steps", "-1"], "argument --steps: must be at least 1, got -1"),
    ("tutorial", ["--lam", "-1"], "argument --lam: must be >= 0, got -1"),
    ("sanity_check", ["--smooth-n", "0"], "argument --smooth-n: must be at least 1, got 0"),
    ("localisation_benchmark", ["--heldout-n", "0"], "argument --heldout-n: must be at least 1, got 0"),
])
def test_option_errors_name_the_option_and_leave_no_out(small, tmp_path, capsys, script, argv, message):
    weights, image = small
    out = tmp_path / "new" / "out"
    common = {"make_shapes_dataset": ["--out", out],
              "train_shapes": ["--out", out / "model.h5"],
              "localisation_benchmark": ["--csv", out / "table.csv"]}.get(
        script, ["--weights", weights, "--image", image, "--out", out])
    assert call(script, *common, *argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.endswith(f"{script}.py: error: {message}") or f"error: {message}" in line, line
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("script", SCRIPT_NAMES)
def test_argparse_errors_are_one_line_without_the_usage_block(capsys, script):
    """An unknown option, and an option without its value or with one it refuses: argparse's error
    alone on stderr, one line (not its usage block), exit code 2 (_common.ArgumentParser)."""
    refused = {"convert_weights": ["--out"], "make_shapes_dataset": ["--n", "many"],
               "localisation_throughput": ["--n", "many"], "profile_layers": ["--threads", "many"]}
    for argv in (["--no-such-option"], refused.get(script, ["--device", "tpu"])):
        assert call(script, *argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and ": error: " in err and "usage:" not in err, err
        assert err.endswith("(see --help)"), err


# ------------------------------------------------------------------ no empty --out
@pytest.mark.parametrize("script", ["localise", "deconvnet"])
def test_an_error_after_the_out_folder_was_made_removes_it(small, tmp_path, capsys, script):
    """These two make --out before they read the image: a missing one fails after the folder is made.
    The folders this run made go; one that was there before stays."""
    weights, image = small
    new = tmp_path / "a" / "b"
    assert call(script, "--weights", weights, "--image", tmp_path / "missing.png", "--out", new) == 2
    assert "missing.png" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "a").exists()
    before = tmp_path / "kept"
    before.mkdir()
    assert call(script, "--weights", weights, "--image", tmp_path / "missing.png", "--out", before) == 2
    assert before.is_dir()


def test_an_interrupt_after_the_out_folder_was_made_removes_it(small, tmp_path, capsys, monkeypatch):
    weights, image = small

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(preprocess, "load_inputs", interrupted)         # localise reads it after making --out
    assert call("localise", "--weights", weights, "--image", image, "--out", tmp_path / "maps") == 130
    assert capsys.readouterr().err.strip().endswith("interrupted")
    assert not (tmp_path / "maps").exists()


def test_a_folder_holding_a_file_stays(small, tmp_path):
    weights, image = small
    out = tmp_path / "maps"
    assert call("saliency_map", "--weights", weights, "--image", image, "--target", "0", "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["shape_gradient.png", "shape_gradient_map.png"]


# ------------------------------------------------------------------ localise: whose pixels
def test_localise_gives_the_box_in_the_crop_and_in_the_image(small, tmp_path, capsys):
    from saliency.evaluation import scale_box
    weights, image = small                                   # 48x48 -> 40x40, centre crop 32x32 at (4, 4)
    assert call("localise", "--weights", weights, "--image", image, "--target", "0", "--out", tmp_path) == 0
    out = capsys.readouterr().out
    found = re.search(r"box \(x0, y0, x1, y1\) = \((\d+), (\d+), (\d+), (\d+)\) in the 32x32 crop's pixels, "
                      r"\((\d+), (\d+), (\d+), (\d+)\) in the original 48x48 image's", out)
    assert found, out
    crop, original = [int(v) for v in found.groups()[:4]], tuple(int(v) for v in found.groups()[4:])
    x0, y0, x1, y1 = crop
    assert original == scale_box((x0 + 4, y0 + 4, x1 + 4, y1 + 4), (40, 40), (48, 48))
    assert call("localise", "--weights", weights, "--image", image, "--target", "0", "--crops", 10,
                "--out", tmp_path) == 0
    assert "in the 40x40 resized image's pixels" in capsys.readouterr().out


def test_crop_window_is_where_resize_crop_cuts():
    rng = np.random.default_rng(0)
    for shape, meta in [((300, 451), dict(resize=256, crop=224)), ((451, 300), dict(resize=256, crop=224)),
                        ((48, 48), dict(resize=40, crop=32)), ((30, 70), dict(resize=None, crop=(20, 24)))]:
        rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        (h, w), top, left = preprocess.crop_window(shape, meta)
        ch, cw = (meta["crop"],) * 2 if np.ndim(meta["crop"]) == 0 else meta["crop"]
        frame = preprocess.resize_shorter(rgb, meta["resize"]) if meta["resize"] else \
            np.asarray(Image.fromarray(rgb).resize((cw, ch), Image.BILINEAR))
        assert frame.shape[:2] == (h, w)
        assert np.array_equal(preprocess.resize_crop(rgb, meta), frame[top:top + ch, left:left + cw])


# ------------------------------------------------------------------ notes
NOTE = "using the shipped demo model weights/shapes_vgg.h5"


def test_sanity_check_on_a_photo_notes_the_shipped_model(tmp_path, capsys):
    from skimage import data
    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    assert call("sanity_check", "--image", photo, "--methods", "gradient", "--out", tmp_path / "o") == 0
    assert capsys.readouterr().err.count(NOTE) == 1


@pytest.mark.parametrize("size", [(1, 1), (3, 451), (40, 60)])
def test_tiny_images_are_enlarged_with_a_note(tmp_path, capsys, size):
    h, w = size
    path = tmp_path / f"tiny_{h}x{w}.png"
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)
    assert call("classify", "--image", path) == 0
    assert call("saliency_map", "--image", path, "--target", "0", "--out", tmp_path / "o") == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "small image" in line]
    assert len(notes) == 2, err
    assert f"small image ({w}x{h} pixels, smaller than the network's 64x64 input) enlarged to" in notes[0]
    assert ("centre crop keeps" in notes[0]) == (size == (3, 451))


def test_no_note_for_an_image_as_large_as_the_input():
    meta = dict(resize=256, crop=224, input_size=(224, 224))
    assert preprocess.upscale_note((224, 300), meta) is None
    assert "enlarged to 341x256" in preprocess.upscale_note((200, 267), meta)


# ------------------------------------------------------------------ deconvnet: why identical
def test_deconvnet_explains_the_identical_rules(small, tmp_path, capsys, monkeypatch):
    from saliency import render
    weights, image = small
    captions = []
    grid = render.grid

    def recording_grid(*args, **kwargs):
        captions.append(kwargs.get("caption", ""))
        return grid(*args, **kwargs)
    monkeypatch.setattr(render, "grid", recording_grid)
    assert call("deconvnet", "--weights", weights, "--image", image, "--out", tmp_path) == 0
    out = capsys.readouterr().out
    why = "the three rules differ only in how a ReLU passes the signal back, so with no ReLU between the input"
    assert f"exact checks: {why}" in out
    assert "no ReLUs (the network with every ReLU taken out): all three rules identical" in out
    assert "from conv1_1 (the first layer, before any ReLU): all three rules identical" in out
    assert len(captions) == 1 and why in captions[0] and "the network with every ReLU taken out" in captions[0]


# ------------------------------------------------------------------ methods.png
def test_methods_figure_separates_errors_from_pointing_and_hides_no_bar():
    module = load_script("evaluate_localisation")
    rows = [{"method": m, "n_images": 12, "top1_loc_error": 0.9, "top5_loc_error": 0.85,
             "top5_loc_error_threshold": 0.88, "pointing_box": 0.95, "maxboxacc_v2": 0.6,
             "pointing_box_tolerant": None if m == "smoothgrad" else 0.97} for m in module.METHODS]
    fig = module.methods_figure(rows)
    fig.canvas.draw()
    axes = fig.axes
    assert len(axes) == 2
    assert "lower is better" in axes[0].get_title() and "higher is better" in axes[1].get_title()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        legend = ax.get_legend().get_window_extent(renderer)
        for bar in ax.patches:
            box = bar.get_window_extent(renderer)
            if box.height > 0:
                assert not legend.overlaps(box), (ax.get_title(), bar)
    import matplotlib.pyplot as plt
    plt.close(fig)
