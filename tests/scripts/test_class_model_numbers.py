"""class_model.py and tutorial.py: the tutorial on its own defaults, stalls said on the page, numbers
that make no sense refused, each preset's files and --help values, labels of networks without names."""
import importlib
import re
import sys

import pytest
from PIL import Image

from models import shapes, vgg
from saliency import render
from saliency.class_model import PRESETS as LIB

from ..cli import call, load_script, one_error_line, subprocess_run
from ..saliency.twin import random_vgg
from .test_saliency_scripts import pngs


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 10-class shapes VGG at 32 px, and skimage's astronaut photo (512x512 RGB)."""
    from skimage import data
    tmp = tmp_path_factory.mktemp("class_model_numbers")
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), classes=10, size=32)
    model.classes = list(shapes.CLASSES)
    weights = tmp / "small.h5"
    vgg.save(model, weights)
    photo = tmp / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    return weights, photo


def said_class(out, name):
    """The class the tutorial printed for image ``name``'s map: '4 star'."""
    return re.search(rf"^{name}: class (.+?) -> ", out, re.M).group(1)


def test_tutorial_runs_on_the_shipped_model_with_its_defaults(small, tmp_path, capsys):
    """No --weights, no --class: the shipped 10-class network, the class model of the photo's top-1 class."""
    _, photo = small
    assert call("tutorial", "--image", photo, "--steps", 2, "--out", tmp_path) == 0
    out = capsys.readouterr().out
    label = said_class(out, "astronaut")
    assert f"class model of {label}: 2 steps, about" in out
    index, name = label.split(" ", 1)
    assert {"tutorial.png", "tutorial_astronaut_saliency.png", f"tutorial_class_model_{index}_{name}.png"} <= set(pngs(tmp_path))


def test_tutorial_class_named_on_a_10_class_network(small, tmp_path, capsys):
    weights, photo = small
    assert call("tutorial", "--weights", weights, "--image", photo, "--class", "ring", "--steps", 2,
                "--out", tmp_path) == 0
    assert "class model of 1 ring: 2 steps" in capsys.readouterr().out
    assert "tutorial_class_model_1_ring.png" in pngs(tmp_path)


def test_tutorial_page_and_figure_say_the_ascent_stalled(small, tmp_path, capsys, monkeypatch):
    """One step: the score cannot have risen by 1, and tutorial.png (not only the terminal) says so."""
    weights, photo = small
    grids, figures = [], []
    grid = render.grid

    def spy_grid(images, titles=None, *args, **kwargs):
        grids.append((titles, kwargs.get("caption")))
        return grid(images, titles, *args, **kwargs)
    monkeypatch.setattr(render, "grid", spy_grid)
    load_script("tutorial")                                          # puts scripts/ on the path
    cm = importlib.import_module("class_model")                      # the module tutorial.py uses
    figure = cm.class_figure

    def spy_figure(picture, note, scores, title, warning):
        figures.append(warning)
        return figure(picture, note, scores, title, warning)
    monkeypatch.setattr(cm, "class_figure", spy_figure)
    assert call("tutorial", "--weights", weights, "--image", photo, "--class", "star", "--steps", 1,
                "--out", tmp_path) == 0
    titles, caption = next((t, c) for t, c in grids if c and c.startswith("class model: tutorial recipe"))
    assert "barely moved" in titles[0] and "the ascent stalled" in caption
    assert figures and "barely moved" in figures[0]
    assert "barely moved" in capsys.readouterr().err


def test_stall_note_says_fell_when_the_score_fell():
    cm = load_script("class_model")
    assert cm.stall_note([-12.43, -145.27]) == "the score fell: -12.43 -> -145.27"
    assert cm.stall_note([-0.506, -0.508]) == "the score fell: -0.506 -> -0.508"     # digits enough to show it
    assert cm.stall_note([1.0, 1.5]) == "the score barely moved: 1.00 -> 1.50 (rose by less than 1)"
    assert cm.stall_note([1.0, 2.5]) == ""


def test_time_estimates_in_s_min_h_or_days():
    cm = load_script("class_model")
    assert [cm.duration(s) for s in (0.25, 40, 150, 7200, 218887.1 * 60)] == \
        ["0.2 s", "40 s", "2.5 min", "2.0 h", "152.0 days"]
    cm.check_estimate(2 * cm.DAY, "a long run", yes=True)                           # --yes lets it run
    with pytest.raises(ValueError, match="a long run would take about 2.0 days"):
        cm.check_estimate(2 * cm.DAY, "a long run", yes=False)


@pytest.mark.parametrize("args,pattern", [
    (["--lr", "-1"], r"--lr must be > 0.*got -1"),
    (["--lr", "0", "--paper"], r"--lr must be > 0"),
    (["--lr", "-6", "--preset", "tutorial"], r"--lr must be > 0"),
])
def test_class_model_refuses_a_step_size_not_above_zero(small, tmp_path, capsys, args, pattern):
    weights, _ = small
    out = tmp_path / "out"
    assert call("class_model", "--weights", weights, "--target", "0", "--steps", 2, "--out", out, *args) == 2
    assert re.search(pattern, one_error_line(capsys.readouterr().err))
    assert not out.exists()


def test_class_model_refuses_a_run_of_more_than_a_day(small, tmp_path):
    """A billion steps: refused after timing a few, before the ascent, with the estimate in days."""
    weights, _ = small
    out = tmp_path / "out"
    r = subprocess_run("class_model", "--weights", weights, "--target", "0", "--steps", 10 ** 9, "--out", out,
                       timeout=120)
    assert r.returncode == 2
    line = one_error_line(r.stderr)
    assert re.search(r"1 class\(es\) x 1 setting\(s\) x 1000000000 steps would take about [\d.]+ days: .*--yes",
                     line), line
    assert not out.exists()
    _, photo = small
    r = subprocess_run("tutorial", "--weights", weights, "--image", photo, "--steps", 10 ** 9, "--out", out,
                       timeout=120)
    assert r.returncode == 2
    assert re.search(r"class model of \d.*: 1000000000 steps would take about [\d.]+ days", one_error_line(r.stderr))
    assert not out.exists()
    # With --overwrite, an earlier run's files stay when the run itself is refused.
    out.mkdir()
    (out / "tutorial.png").write_bytes(b"an earlier run")
    r = subprocess_run("tutorial", "--weights", weights, "--image", photo, "--steps", 10 ** 9, "--out", out,
                       "--overwrite", timeout=120)
    assert r.returncode == 2 and (out / "tutorial.png").read_bytes() == b"an earlier run"
    (out / "class_models.png").write_bytes(b"an earlier run")
    r = subprocess_run("class_model", "--weights", weights, "--target", "0", "--steps", 10 ** 9, "--out", out,
                       "--overwrite", timeout=120)
    assert r.returncode == 2 and (out / "class_models.png").read_bytes() == b"an earlier run"


def test_help_names_each_presets_value():
    r = subprocess_run("class_model", "--help")
    text = " ".join(r.stdout.split())
    cm = load_script("class_model")
    values = {**LIB, "tutorial": dict(steps=151, lr=6.0)}                 # tutorial_class_model's defaults
    for key in ("steps", "lr"):
        listed = ", ".join(f"{name} {values[name][key]}" for name in cm.PRESETS)
        assert listed in text, (key, listed)
    assert "default 0.05, lucid 0.05, paper 1.0, tutorial 6.0" in text
    assert ", ".join(f"{name} {LIB[name]['l2']}" for name in ("default", "lucid", "paper")) in text


def test_presets_write_distinct_files(small, tmp_path):
    """Each preset writes file names of its own, so presets can share a folder."""
    weights, _ = small
    files = {}
    for preset in ("default", "lucid", "paper", "tutorial"):
        out = tmp_path / preset
        assert call("class_model", "--weights", weights, "--target", "0,star", "--preset", preset, "--steps", 2,
                    "--gif", "--save-npy", "--out", out) == 0
        files[preset] = set(pngs(out))
    assert {"class_model_0_circle.png", "class_models.png", "class_model_scores.png"} <= files["default"]
    assert {"class_model_4_star_paper.png", "class_model_4_star_paper.npy", "class_models_paper.png",
            "class_model_scores_paper.png"} <= files["paper"]
    for a in files:
        for b in files:
            assert a == b or not files[a] & files[b], (a, b, files[a] & files[b])


def test_a_network_without_class_names_is_labelled_once(tmp_path, capsys):
    """Its classes are 'class_0', 'class_1', ...: 'class 1', never 'class 1 class 1'."""
    model = random_vgg(blocks=((4,),), fc=(8,), classes=3, size=16)
    assert model.classes[1] == "class_1"
    weights = tmp_path / "unnamed.h5"
    vgg.save(model, weights)
    assert call("class_model", "--weights", weights, "--target", "1", "--paper", "--steps", 2,
                "--out", tmp_path / "o") == 0
    captured = capsys.readouterr()
    assert "class 1: score" in captured.out
    assert "class 1 class 1" not in captured.out + captured.err
    assert "class_model_1_paper.png" in pngs(tmp_path / "o")
    class_label = sys.modules["_images"].class_label                  # as the scripts load it
    assert class_label(model, 1) == "1"
    model.classes = ["zero", "one", "two"]
    assert class_label(model, 1) == "1 one"
