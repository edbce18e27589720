"""scripts/classify.py and scripts/convert_weights.py: output, --help, and one-line errors (exit 2).

Most runs call the scripts' ``main`` in-process through ``_common.run`` (fast); a few run them as a
real subprocess to check what a user sees.
"""
import os
import re
import sys

import numpy as np
import pytest
from PIL import Image

import minigrad as mg
from models import imagenet, preprocess, vgg

from ..cli import call, one_error_line as _one_error_line, subprocess_run
from ..cli import load_script as _load_script


@pytest.fixture
def setup(small_model, tmp_path, photo):
    weights = tmp_path / "small.h5"
    vgg.save(small_model, weights)
    img = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(img)
    grey = tmp_path / "grey.png"
    Image.fromarray(photo[:, :, 1]).save(grey)
    return weights, img, grey


def test_classify_prints_top_k_matching_the_model(setup, capsys, photo):
    weights, img, grey = setup
    assert call("classify", "--weights", weights, "--image", img, grey, "--top", 3) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == str(img) and lines[4] == str(grey) and len(lines) == 8
    model = vgg.load(weights)
    with mg.no_grad():
        logits = model(preprocess.prepare(photo, model.meta)[None]).data[0]
    probs = imagenet.softmax(logits.astype(np.float64))
    best = imagenet.top_k(probs, model.classes, 3)
    for line, (i, name, p) in zip(lines[1:4], best):
        assert f"{p:7.2%}" in line and f" {i} " in line and name in line
    assert "grey image converted to RGB" in err                        # the note, on stderr


def test_classify_target_out_and_save_npy(setup, capsys, tmp_path, monkeypatch, photo):
    """--target reports that class's probability and rank; --out writes the table as CSV, --save-npy
    the logits (to out/ when --out is not given), as the README says every script does."""
    import csv
    weights, img, grey = setup
    model = vgg.load(weights)
    with mg.no_grad():
        logits = model(preprocess.prepare(photo, model.meta)[None]).data[0]
    probs = imagenet.softmax(logits.astype(np.float64))
    last = int(np.argmin(probs))                                        # not in the top 2
    out = tmp_path / "results"
    assert call("classify", "--weights", weights, "--image", img, grey, "--top", 2,
                "--target", model.classes[last], "--out", out, "--save-npy") == 0
    printed = capsys.readouterr().out.splitlines()
    target_line = printed[3]
    assert f"({len(probs)})" in target_line and f"{probs[last]:7.2%}" in target_line and "target" in target_line
    with open(out / "classify.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == [str(img)] * 3 + [str(grey)] * 3
    mine = rows[:3]
    assert [int(r["rank"]) for r in mine] == [1, 2, len(probs)] and [r["target"] for r in mine] == ["0", "0", "1"]
    for r in mine:
        i = int(r["index"])
        assert r["class"] == imagenet.display_name(model.classes[i])
        np.testing.assert_allclose(float(r["probability"]), probs[i], rtol=1e-5)
        np.testing.assert_allclose(float(r["logit"]), logits[i], rtol=1e-5)
    np.testing.assert_array_equal(np.load(out / "astronaut_logits.npy"), logits)
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_logits.npy", "classify.csv", "grey_logits.npy"]
    monkeypatch.chdir(tmp_path)
    assert call("classify", "--weights", weights, "--image", img, "--save-npy") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astronaut_logits.npy"]
    assert call("classify", "--weights", weights, "--image", img, "--target", "n02123045") == 2
    assert "not a class name of this model (5 classes)" in _one_error_line(capsys.readouterr().err)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "out").write_text("a file where out/ would go")
    monkeypatch.chdir(blocked)
    assert call("classify", "--weights", weights, "--image", img, "--save-npy") == 2
    assert "--save-npy: out exists and is not a folder" in _one_error_line(capsys.readouterr().err)


def test_top_larger_than_classes_is_clipped_with_a_note(setup, capsys):
    weights, img, _ = setup
    assert call("classify", "--weights", weights, "--image", img, "--top", 50) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 + 5 and "showing 5" in err


@pytest.mark.parametrize("case, pattern", [
    ("missing-image", "image .*nope.png: not found"),
    ("not-an-image", "not an image file Pillow can read"),
    ("missing-weights", "weights file .*none.h5: not found"),
    ("truncated-weights", "truncated or corrupt"),
    ("not-hdf5", "not an HDF5 file"),
    ("top-zero", "--top must be at least 1"),
])
def test_bad_input_one_line_exit_2(setup, tmp_path, capsys, case, pattern):
    weights, img, _ = setup
    args = ["--weights", weights, "--image", img]
    if case == "missing-image":
        args[3] = tmp_path / "nope.png"
    elif case == "not-an-image":
        (tmp_path / "x.jpg").write_text("hello")
        args[3] = tmp_path / "x.jpg"
    elif case == "missing-weights":
        args[1] = tmp_path / "none.h5"
    elif case == "truncated-weights":
        data = weights.read_bytes()
        (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
        args[1] = tmp_path / "cut.h5"
    elif case == "not-hdf5":
        (tmp_path / "w.h5").write_text("hello")
        args[1] = tmp_path / "w.h5"
    elif case == "top-zero":
        args += ["--top", "0"]
    assert call("classify", *args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert re.search(pattern, _one_error_line(err)), err


def test_gpu_without_gpu(setup, capsys):
    if mg.gpu_available():
        pytest.skip("a GPU is present")
    weights, img, _ = setup
    assert call("classify", "--weights", weights, "--image", img, "--device", "gpu") == 2
    assert "no usable GPU" in _one_error_line(capsys.readouterr().err)


def test_default_weights_missing_says_what_to_do(setup, capsys, monkeypatch, tmp_path):
    _load_script("classify")
    common = sys.modules["_common"]
    monkeypatch.setattr(common, "PROJECT_ROOT", tmp_path)                 # a checkout without the weights
    monkeypatch.setattr(common, "DEFAULT_WEIGHTS", tmp_path / "weights" / "shapes_vgg.h5")
    _, img, _ = setup
    assert call("classify", "--image", img) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "shapes_vgg.h5" in line and "--weights" in line


def test_convert_weights_cli(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from .conftest import SMALL, torch_vgg
    src = tmp_path / "small.pth"
    torch.save(torch_vgg(**SMALL).state_dict(), src, _use_new_zipfile_serialization=False)
    out = tmp_path / "out" / "small.h5"
    assert call("convert_weights", src, "--out", out) == 0
    assert "custom" in capsys.readouterr().out and vgg.load(out).config.blocks == SMALL["blocks"]
    assert call("convert_weights", src, "--out", tmp_path / "x.h5", "--arch", "vgg16") == 2
    assert "not vgg16" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "x.h5").exists()


def test_convert_weights_refuses_hostile_pth(tmp_path, capsys):
    marker = tmp_path / "PWNED"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(Hostile(), protocol=2))
    assert call("convert_weights", evil, "--out", tmp_path / "evil.h5") == 2
    assert "refusing to load it" in _one_error_line(capsys.readouterr().err)
    assert not marker.exists() and not (tmp_path / "evil.h5").exists()


def test_as_a_user_sees_it(setup):
    weights, img, _ = setup
    help_ = subprocess_run("classify", "--help")
    assert help_.returncode == 0 and "--weights" in help_.stdout and "--device" in help_.stdout
    assert "--top" in help_.stdout
    ok = subprocess_run("classify", "--weights", weights, "--image", img)
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 6, ok.stderr
    bad = subprocess_run("classify", "--weights", weights, "--image", weights)
    assert bad.returncode == 2 and bad.stdout == ""
    assert _one_error_line(bad.stderr).startswith("classify.py: error: image ")
    conv = subprocess_run("convert_weights", "--help")
    assert conv.returncode == 0 and "--arch" in conv.stdout and "--out" in conv.stdout
