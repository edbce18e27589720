"""SmoothGrad and the 10-crop average (saliency/maps.py) against their definitions written out as
loops of single input gradients. Both run on the model's device from end to end (no host round trip
per step); here on the CPU, and in tests/minigrad/test_gpu_ops.py on a GPU against the CPU."""
import numpy as np
import pytest

import saliency

from .twin import images, random_vgg


@pytest.fixture(scope="module")
def model():
    return random_vgg(size=32)


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_smoothgrad_is_the_mean_gradient_of_its_noisy_copies(model):
    batch, n, sigma, seed = images(2, 32), 5, 0.2, 3
    progress = type("Bar", (), {"total": 0, "update": lambda self, m: setattr(self, "total", self.total + m)})()
    got = saliency.smoothgrad(model, batch, [4, 1], n=n, sigma=sigma, chunk=2, seed=seed, progress=progress)
    assert got.shape == batch.shape and got.dtype == np.float32 and progress.total == 2 * n
    rng = np.random.default_rng(seed)                  # the same stream: per image, chunks of 2, 2, 1
    for k, target in enumerate([4, 1]):
        image = batch[k]
        std = np.float32(sigma * (image.max() - image.min()))
        want = np.zeros(image.shape, np.float64)
        for m in (2, 2, 1):
            noisy = image[None] + rng.standard_normal((m,) + image.shape, dtype=np.float32) * std
            want += saliency.input_gradient(model, noisy, target).sum(axis=0, dtype=np.float64)
        assert rel(got[k], want / n) < 1e-5            # float32 sums of 5 gradients against float64


def test_smoothgrad_without_noise_is_the_gradient(model):
    batch = images(1, 32)
    got = saliency.smoothgrad(model, batch, 3, n=3, sigma=0.0)
    assert rel(got, saliency.input_gradient(model, batch, 3)) < 1e-6     # (g + g + g) / 3 in float32


def test_ten_crop_saliency_is_the_average_of_the_crops_maps(model):
    image = images(1, 40)[0]                            # (3, 40, 40), crops of 32
    got = saliency.ten_crop_saliency(model, image, 6)
    assert isinstance(got, np.ndarray) and got.shape == (40, 40) and got.dtype == np.float32
    total, count = np.zeros((40, 40)), np.zeros((40, 40))
    for y, x, mirrored in saliency.maps.ten_crops(40, 40, 32):
        crop = image[:, y:y + 32, x:x + 32]
        crop = crop[:, :, ::-1] if mirrored else crop
        smap = saliency.saliency_map(saliency.input_gradient(model, np.ascontiguousarray(crop[None]), 6))[0]
        total[y:y + 32, x:x + 32] += smap[:, ::-1] if mirrored else smap
        count[y:y + 32, x:x + 32] += 1
    assert count.min() == 2 and count.max() == 10               # corners: a crop and its mirror; centre: all
    assert rel(got, total / count) < 1e-5
