"""scripts/train_shapes.py: where it writes (a trial run once replaced the shipped model by default); PGD."""
import hashlib

import numpy as np
import pytest

from models import vgg

from ..cli import ROOT, call, load_script

SHIPPED = ROOT / "weights" / "shapes_vgg.h5"
TINY = ("--train-size", 16, "--test-size", 8, "--epochs", 1, "--batch", 8, "--size", 16, "--curriculum-steps", 0)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writes_under_out_by_default_and_leaves_the_shipped_model(tmp_path, monkeypatch, capsys):
    before = SHIPPED.read_bytes()
    monkeypatch.chdir(tmp_path)
    try:
        assert call("train_shapes", *TINY) == 0
        assert SHIPPED.read_bytes() == before, "the default run replaced weights/shapes_vgg.h5"
    finally:
        if SHIPPED.read_bytes() != before:              # a regression must not cost the shipped file
            SHIPPED.write_bytes(before)
    written = tmp_path / "out" / "shapes_vgg.h5"
    assert vgg.load(written).config.input_size == (16, 16)
    out = capsys.readouterr()
    assert "saved out/shapes_vgg.h5" in out.out and "replaced" not in out.out + out.err


def test_replacing_a_file_needs_out_naming_it_and_is_reported(tmp_path, capsys):
    target = tmp_path / "mine.h5"
    target.write_bytes(b"an older file")
    assert call("train_shapes", *TINY, "--out", target) == 0
    assert vgg.load(target).config.input_size == (16, 16)
    out = capsys.readouterr()
    assert f"{target} exists: it will be replaced" in out.err
    assert f"saved {target} (replaced the file that was there)" in out.out


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_stays_in_the_ball_and_the_pixel_range_and_raises_the_loss(norm):
    import minigrad as mg
    from minigrad import functional as F
    from models import preprocess, shapes
    from saliency.class_model import valid_range
    script = load_script("train_shapes")
    model = vgg.load(SHIPPED)
    images, labels, _, _ = shapes.make_dataset(16, seed=99)
    x = np.stack([preprocess.normalise(im, model.meta) for im in images])
    lo, hi = valid_range(model.meta)
    eps = 2.0 if norm == "l2" else 0.05
    adv = script.pgd(model, x, labels, eps, 3, norm, lo, hi, np.random.default_rng(0))
    assert adv.dtype == np.float32 and adv.shape == x.shape
    d = (adv - x).reshape(len(x), -1)
    size = np.sqrt((d * d).sum(1)) if norm == "l2" else np.abs(d).max(1)
    assert (size <= eps * (1 + 1e-5)).all(), size            # float32 rounding of the projection
    assert (adv >= lo - 1e-6).all() and (adv <= hi + 1e-6).all()
    assert all(p.grad is None or not np.any(p.grad) for p in model.parameters())
    with mg.no_grad():
        clean, attacked = (F.cross_entropy(model(mg.Tensor(v)), labels).item() for v in (x, adv))
    assert attacked > clean + 0.1, (clean, attacked)


def test_adversarial_training_runs_and_refuses_a_negative_eps(tmp_path, capsys):
    out = tmp_path / "adv.h5"
    assert call("train_shapes", *TINY, "--adversarial-eps", 1.0, "--adversarial-steps", 2, "--out", out) == 0
    assert vgg.load(out).config.input_size == (16, 16)
    assert call("train_shapes", *TINY, "--adversarial-eps", -1, "--out", out) == 2
    assert "--adversarial-eps must be >= 0" in capsys.readouterr().err


def test_the_resnet_trains_its_batch_norms_and_keeps_their_statistics(tmp_path, monkeypatch, capsys):
    import models
    from minigrad import nn
    from models import resnet
    monkeypatch.chdir(tmp_path)
    assert call("train_shapes", *TINY, "--arch", "resnet") == 0           # 16 images, batch 8: 2 steps
    assert "saved out/shapes_resnet.h5" in capsys.readouterr().out
    model = models.load(tmp_path / "out" / "shapes_resnet.h5")
    assert isinstance(model, resnet.ResNet) and model.config.input_size == (16, 16)
    bns = [model.layer(n) for n in model.layer_names if isinstance(model.layer(n), nn.BatchNorm2d)]
    assert bns and all(int(bn.num_batches_tracked) == 2 for bn in bns)
    assert all(np.abs(bn.running_mean).max() > 0 for bn in bns)           # moved from the fresh zeros
    # --resume takes a file of the same architecture only
    assert call("train_shapes", *TINY, "--arch", "vgg", "--resume", "out/shapes_resnet.h5") == 2
    assert "not a shapes network of this architecture (--arch vgg)" in capsys.readouterr().err
