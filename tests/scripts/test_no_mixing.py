"""One run's outputs never mix with another's: a script that writes a data set or a fixed set of files
into --out refuses a folder that holds an earlier run's files (one line naming a few of them and their
count, exit status 2, before any work) unless --overwrite, which removes those files and no others:
a smaller shapes set is not written over a larger one (which would leave the larger one's extra
images beside the new CSV, for evaluate_localisation.py to score the mix), and the scripts that share
the default out/ never claim each other's files."""
import json
import sys

import pytest
from PIL import Image

from models import shapes

from ..cli import call, load_script, one_error_line
from ..saliency.twin import save_small_shapes_vgg


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Small shapes weights (32x32) and one shapes image."""
    tmp = tmp_path_factory.mktemp("mixing")
    weights = save_small_shapes_vgg(tmp / "small.h5", resize=32)
    image = tmp / "shape.png"
    Image.fromarray(shapes.make_dataset(1, seed=5, size=32)[0][0]).save(image)
    return weights, image


def files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def refused(capsys, folder, count):
    """The run stopped before any work with one line naming the folder, the count and the way out."""
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert f"--out {folder} holds files of an earlier run" in line and f": {count} files)" in line, line
    assert "pass --overwrite to replace them" in line, line
    assert captured.out == "" and "%|" not in captured.err, captured          # nothing ran
    return line


def test_a_smaller_shapes_set_replaces_a_larger_one_only_when_asked(tmp_path, capsys):
    out = tmp_path / "set"
    assert call("make_shapes_dataset", "--n", 5, "--out", out) == 0
    (out / "notes.txt").write_text("the user's own file")
    before = files(out)
    capsys.readouterr()
    assert call("make_shapes_dataset", "--n", 2, "--out", out) == 2
    assert "annotations/shapes_00000.xml" in refused(capsys, out, 16)          # 5 x 3 files and the CSV
    assert files(out) == before
    assert call("make_shapes_dataset", "--n", 2, "--out", out, "--overwrite") == 0
    assert files(out) == sorted(["LOC_solution.csv", "notes.txt"] + [
        f"{folder}/shapes_0000{k}.{ext}" for k in (0, 1)
        for folder, ext in (("images", "png"), ("masks", "png"), ("annotations", "xml"))])
    assert len((out / "LOC_solution.csv").read_text().splitlines()) == 3


def test_demo_refuses_the_files_of_an_earlier_run(tmp_path, capsys):
    out = tmp_path / "out"
    earlier = ([f"images/{k:02d}_{c}.png" for k, c in enumerate(shapes.CLASSES)]
               + [f"saliency/{k:02d}_{c}.png" for k, c in enumerate(shapes.CLASSES)]
               + ["summary.png", "saliency_summary.png", "demo_class_models.png"])
    for name in earlier:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"an earlier run's file")
    assert call("demo", "--fast", "--out", out) == 2
    refused(capsys, out, len(earlier))
    assert files(out) == sorted(earlier)


def test_class_model_presets_keep_their_own_files(small, tmp_path, capsys):
    weights, _ = small
    out = tmp_path / "out"
    run = ("--weights", weights, "--steps", 2, "--out", out)
    assert call("class_model", *run, "--target", "0,1") == 0
    default = files(out)
    assert call("class_model", *run, "--target", "0,1", "--paper") == 0      # another preset: its own files
    paper = sorted(set(files(out)) - set(default))
    assert paper and all("_paper." in name for name in paper), paper
    (out / "notes.txt").write_text("the user's own file")
    capsys.readouterr()
    assert call("class_model", *run, "--target", "0") == 2
    refused(capsys, out, len(default))
    assert call("class_model", *run, "--target", "0", "--overwrite") == 0
    # the default preset's grid of two classes is gone; the paper preset's files and the user's stay
    ours = [name for name in default if name.startswith("class_model_0_")]
    assert files(out) == sorted(ours + paper + ["notes.txt"])


@pytest.mark.parametrize("script,argv", [
    ("sanity_check", ("--n-images", 1, "--smooth-n", 1, "--methods", "gradient")),
    ("tutorial", ("--image", "IMAGE", "--steps", 2)),
])
def test_a_second_run_is_refused_unless_overwrite(small, tmp_path, capsys, script, argv):
    weights, image = small
    out = tmp_path / "out"
    run = ["--weights", weights, "--out", out] + [image if a == "IMAGE" else a for a in argv]
    assert call(script, *run) == 0
    written = files(out)
    (out / "notes.txt").write_text("the user's own file")
    capsys.readouterr()
    assert call(script, *run) == 2
    refused(capsys, out, len(written))
    assert call(script, *run, "--overwrite") == 0
    assert files(out) == sorted(written + ["notes.txt"])


def test_evaluate_localisation_overwrites_only_when_asked(tmp_path, capsys):
    data, out = tmp_path / "set", tmp_path / "out"
    assert call("make_shapes_dataset", "--n", 3, "--out", data) == 0
    run = ("--images", data / "images", "--annotations", data / "annotations", "--out", out, "--crops", 1,
           "--top", 1, "--shard-size", 1, "--scheduler", "synchronous")
    assert call("evaluate_localisation", *run) == 0
    (out / "notes.txt").write_text("the user's own file")
    capsys.readouterr()
    assert call("evaluate_localisation", *run, "--limit", 2) == 2
    assert "--resume to continue it" in refused(capsys, out, 6)     # run.json, 3 shards, the two tables
    assert call("evaluate_localisation", *run, "--resume", "--overwrite") == 2
    assert "choose one" in one_error_line(capsys.readouterr().err)
    before = files(out)                           # a scheduler that cannot be reached removes nothing
    assert call("evaluate_localisation", *run[:-1], "nonsense://x", "--limit", 2, "--overwrite") == 2
    assert "nonsense" in one_error_line(capsys.readouterr().err) and files(out) == before
    assert call("evaluate_localisation", *run, "--limit", 2, "--overwrite") == 0
    assert files(out) == ["notes.txt", "results.csv", "shards/gradient/00000.json", "shards/gradient/00001.json",
                          "shards/run.json", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["n_images"] == 2


def test_scripts_sharing_out_never_claim_each_others_files(tmp_path):
    """demo.py, class_model.py (each preset) and tutorial.py all default to out/: the files each writes
    are matched by its own globs only, so none refuses, or with --overwrite removes, another's."""
    demo, cm, tutorial = load_script("demo"), load_script("class_model"), load_script("tutorial")
    common = sys.modules["_common"]
    written = {
        "demo": ["images/00_circle.png", "saliency/00_circle_vgg.png", "summary.png", "saliency_summary.png",
                 "demo_class_models.png"],
        "class_model default": ["class_model_4_star.png", "class_model_scores.png", "class_models.png"],
        "class_model paper": ["class_model_4_star_paper.png", "class_model_scores_paper.png", "class_models_paper.png"],
        "class_model tutorial": ["class_model_130_flamingo_tutorial.png", "class_model_scores_tutorial.png",
                                 "class_models_tutorial.png"],
        "tutorial": ["tutorial_class_model_130_flamingo.png", "tutorial_class_model_130_flamingo.gif",
                     "tutorial_chelsea_saliency.png", "tutorial.png"],
    }
    claims = {"demo": (demo.OUTPUTS, ()), "tutorial": (tutorial.OUTPUTS, ())}
    for preset in ("default", "paper", "tutorial"):
        claims[f"class_model {preset}"] = cm.output_globs(preset)
    for name, names in written.items():
        for path in names:
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_bytes(b"x")
    for name, (mine, keep) in claims.items():
        found = common.claim_outputs(tmp_path, mine, True, keep=keep, remove=False)
        assert sorted(p.relative_to(tmp_path).as_posix() for p in found) == sorted(written[name]), name
