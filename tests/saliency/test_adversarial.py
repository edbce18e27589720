"""saliency/adversarial.py: PGD stays in its ball and the pixel range, leaves the weights alone and
raises the loss."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from models import preprocess, shapes, vgg
from saliency.adversarial import pgd
from saliency.transforms import valid_range

from ..cli import ROOT

SHIPPED = ROOT / "weights" / "shapes_vgg.h5"


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_stays_in_the_ball_and_the_pixel_range_and_raises_the_loss(norm):
    model = vgg.load(SHIPPED)
    images, labels, _, _ = shapes.make_dataset(16, seed=99)
    x = np.stack([preprocess.normalise(im, model.meta) for im in images])
    lo, hi = valid_range(model.meta)
    eps = 2.0 if norm == "l2" else 0.05
    adv = pgd(model, x, labels, eps, 3, norm, lo, hi, np.random.default_rng(0))
    assert adv.dtype == np.float32 and adv.shape == x.shape
    d = (adv - x).reshape(len(x), -1)
    size = np.sqrt((d * d).sum(1)) if norm == "l2" else np.abs(d).max(1)
    assert (size <= eps * (1 + 1e-5)).all(), size            # float32 rounding of the projection
    assert (adv >= lo - 1e-6).all() and (adv <= hi + 1e-6).all()
    assert all(p.grad is None or not np.any(p.grad) for p in model.parameters())
    with mg.no_grad():
        clean, attacked = (F.cross_entropy(model(mg.Tensor(v)), labels).item() for v in (x, adv))
    assert attacked > clean + 0.1, (clean, attacked)


def test_pgd_refuses_an_unknown_norm():
    model = vgg.load(SHIPPED)
    x = np.zeros((1, 3, 64, 64), np.float32)
    with pytest.raises(ValueError, match="norm"):
        pgd(model, x, np.zeros(1, int), 1.0, 1, "l1", -2, 2, np.random.default_rng(0))
