"""The shipped shapes network, the demo and the localisation benchmark."""
import csv

import numpy as np
import pytest

import minigrad as mg
import models
import saliency
from minigrad import nn
from models import preprocess, resnet, shapes, vgg
from saliency.localise import box_iou

from ..cli import ROOT, call, load_script

WEIGHTS = ROOT / "weights" / "shapes_vgg.h5"
RESNET = ROOT / "weights" / "shapes_resnet.h5"


@pytest.fixture(scope="module")
def model():
    return vgg.load(WEIGHTS)


def accuracy(model, n, seed):
    images, labels, _, _ = shapes.make_dataset(n, seed=seed)
    x = np.stack([preprocess.normalise(im, model.meta) for im in images])
    with mg.no_grad():
        pred = np.concatenate([model(mg.Tensor(x[i:i + 250])).data.argmax(1) for i in range(0, n, 250)])
    return (pred == labels).mean()


def test_shipped_weights_load_and_reach_97_percent(model):
    assert model.classes == shapes.CLASSES and model.config.input_size == (64, 64)
    acc = accuracy(model, 2000, seed=424242)                               # a seed nothing else uses
    assert acc >= 0.97, f"accuracy {acc:.4f} on 2000 fresh images"


def test_shipped_resnet_has_its_batch_norm_statistics_and_classifies_shapes():
    model = models.load(RESNET)
    assert isinstance(model, resnet.ResNet) and not model.training
    assert model.classes == shapes.CLASSES and model.config.input_size == (64, 64)
    bns = [model.layer(n) for n in model.layer_names if isinstance(model.layer(n), nn.BatchNorm2d)]
    assert len(bns) == 1 + 2 * sum(model.config.depths) + len(model.config.depths) - 1      # stem, blocks, shortcuts
    for bn in bns:                                     # trained statistics, not the fresh 0 / 1 / 0
        assert int(bn.num_batches_tracked) > 0
        assert np.abs(bn.running_mean).max() > 1e-3 and np.abs(bn.running_var - 1).max() > 1e-3
    acc = accuracy(model, 500, seed=97531)                                 # a seed nothing else uses
    assert acc >= 0.95, f"accuracy {acc:.4f} on 500 fresh images"


def test_demo_fast_mode_end_to_end(tmp_path, capsys):
    """Both shipped networks side by side; the VGG's first localisation checked against a recomputation."""
    assert call("demo", "--fast", "--out", tmp_path) == 0
    for name in ("summary.png", "demo_class_models.png", "saliency_summary.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert len(list((tmp_path / "saliency").glob("*.png"))) == 3
    assert len(list((tmp_path / "images").glob("*.png"))) == 3
    out = capsys.readouterr().out
    printed = out.splitlines()
    assert "summary.png" in out
    # The verdict over each GraphCut panel is the IoU of that image's box with its truth box,
    # recomputed here from the same held-out image: the first one the demo shows.
    demo = load_script("demo")
    model = vgg.load(WEIGHTS)
    images, labels, _, boxes = shapes.make_dataset(60, seed=demo.DEMO_SEED, size=64)
    k = int(np.flatnonzero(labels == 0)[0])
    x = preprocess.normalise(images[k], model.meta)[None]
    smap = saliency.saliency_map(saliency.input_gradient(model, x, 0, rule="gradient"))[0]
    _, box = saliency.localise(images[k], smap, **demo.LOCALISE)
    iou = box_iou(box, boxes[k])
    line = next(row for row in out.splitlines() if row.startswith(f"{k:02d}_{shapes.CLASSES[0]} (VGG):"))
    shown = f"IoU {np.floor(iou * 100) / 100:.2f} {'≥' if iou >= 0.5 else '<'} 0.5: {'pass' if iou >= 0.5 else 'fail'}"
    assert line.endswith(shown), (line, iou)
    for net in ("VGG", "ResNet"):
        rows = [r for r in out.splitlines() if f" ({net}): GraphCut box" in r]
        passed = sum(r.split("IoU ")[1].endswith("pass") for r in rows)
        assert len(rows) == 3 and f"{net}: {passed} of 3 GraphCut boxes pass" in out
    # Each network's class models judged by both: a row per maker, a column per judge.
    table = printed[printed.index(next(l for l in printed if l.startswith("class models called"))) + 1:][:3]
    assert table[0].split() == ["made", "by", "judged", "by", "VGG", "judged", "by", "ResNet"], table
    assert [r.split()[0] for r in table[1:]] == ["VGG", "ResNet"] and all(r.endswith("/10") for r in table[1:])
    # The closing listing names everything the run wrote, aligned in two columns.
    rows = printed[printed.index(next(l for l in printed if l.startswith("done in"))) + 1:]
    written = sorted(f"{p}/" if p.is_dir() else str(p) for p in tmp_path.iterdir())
    assert sorted(r.split()[0] for r in rows) == written, rows
    assert len({r.index(r.split()[1], len(r.split()[0]) + 2) for r in rows}) == 1, rows    # one column
    assert [r for r in rows if "saliency_summary.png" in r][0].endswith("the maps and localisations")
    # A second run refuses the first one's files (every one of them), before any work, unless --overwrite.
    assert call("demo", "--fast", "--out", tmp_path) == 2
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert f"{len(files)} files)" in capsys.readouterr().err


def test_localisation_benchmark_is_sane(tmp_path, capsys):
    out = tmp_path / "loc.csv"
    assert call("localisation_benchmark", "--n", 40, "--heldout-n", 10, "--methods", "gradient,guided",
                "--csv", out) == 0
    text = capsys.readouterr().out
    accuracy = float(text.split("test images (held out from training):")[1].split()[0])
    assert accuracy >= 0.9
    rows = {r["method"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"gradient", "guided", "baseline-whole-image", "baseline-centred-box"}
    assert list(next(iter(rows.values()))) == [
        "method", "pointing_mask", "pointing_mask_tolerant", "pointing_box", "pointing_box_tolerant",
        "localisation_error", "localisation_error_threshold", "maxboxacc_v2", "mask_iou", "mask_iou_threshold",
        "map_threshold_iou30", "map_threshold_iou50", "map_threshold_iou70", "n"]
    for r in rows.values():
        for k in ("localisation_error", "localisation_error_threshold", "mask_iou", "mask_iou_threshold"):
            assert 0 <= float(r[k]) <= 1
    # The paper's method beats the whole-image box, and GraphCut beats the threshold box on the same maps.
    g = rows["gradient"]
    assert float(g["localisation_error"]) < float(rows["baseline-whole-image"]["localisation_error"])
    assert float(g["mask_iou"]) > float(rows["baseline-whole-image"]["mask_iou"])
    assert float(g["localisation_error"]) < float(g["localisation_error_threshold"])
    # Maps point at the object far more often than chance: objects cover about 15% of the pixels
    # (0.39 for the gradient and 0.63 for guided over N = 500); the box holds the mask, so pointing in
    # the box counts every hit on the mask and more.
    for m in ("gradient", "guided"):
        assert float(rows[m]["pointing_mask"]) > 0.3
        assert float(rows[m]["pointing_box"]) >= float(rows[m]["pointing_mask"])
        assert 0 <= float(rows[m]["maxboxacc_v2"]) <= 1
        assert all(0 <= float(rows[m][f"map_threshold_iou{d}"]) < 1 for d in (30, 50, 70))
    assert float(rows["gradient"]["pointing_box"]) > float(rows["gradient"]["pointing_mask"])
    # The pointing game with TorchRay's tolerance (15 px at 224: 4.3 px here) counts every strict hit and more.
    for m in ("gradient", "guided", "baseline-centred-box"):
        for region in ("mask", "box"):
            assert float(rows[m][f"pointing_{region}_tolerant"]) >= float(rows[m][f"pointing_{region}"])
    assert float(rows["gradient"]["pointing_mask_tolerant"]) > float(rows["gradient"]["pointing_mask"])
    assert "chosen on 10 held-out images (seed 31338), never these test images" in text
    assert rows["baseline-whole-image"]["maxboxacc_v2"] == "nan"


def test_demo_cross_classification_counts():
    demo = load_script("demo")
    names = ["VGG", "ResNet"]
    judged = [[np.arange(10), np.array([0, 1, 2, 0, 0, 0, 0, 0, 0, 0])],          # the VGG's pictures
              [np.array([9] * 10), np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0])]]       # the ResNet's
    assert [[demo.own_class(v) for v in row] for row in judged] == [[10, 3], [1, 9]]
    lines = demo.cross_table(names, judged)
    assert lines[1].split() == ["VGG", "10/10", "3/10"] and lines[2].split() == ["ResNet", "1/10", "9/10"]
    sentence = demo.cross_sentence(names, judged)
    assert "the ResNet calls 3/10 of the VGG's class models their class" in sentence
    assert "the VGG calls 1/10 of the ResNet's class models their class" in sentence
    assert "its own: the VGG 10/10, the ResNet 9/10" in sentence


def test_the_resnets_deconvnet_map_does_not_depend_on_the_image():
    """No max pool, so no switches, and the deconvnet's ReLU looks only at the signal coming back:
    nothing in its backward pass depends on the input (the VGG's max-pool switches do). One image a
    pass, so that each goes through the same chunks and GEMM blocks, bit for bit: in one batch the
    images sit in different columns of a GEMM, which some BLAS kernels round differently (OpenBLAS's
    Haswell kernel on one thread did)."""
    images, _, _, _ = shapes.make_dataset(3, seed=7)

    def deconvnet(model):
        x = np.stack([preprocess.normalise(im, model.meta) for im in images])
        return np.concatenate([saliency.input_gradient(model, x[i:i + 1], 3, rule="deconvnet") for i in range(3)])

    g = deconvnet(models.load(RESNET))
    assert np.abs(g).max() > 0 and np.array_equal(g[1], g[0]) and np.array_equal(g[2], g[0])
    g = deconvnet(vgg.load(WEIGHTS))
    assert not np.allclose(g[1], g[0])
