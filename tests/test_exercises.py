"""The exercises' graders, tested both ways so that neither rots: every grader passes on the library's
own answers (DEEPINSIDE_EXERCISES=reference) and fails on the untouched stubs, and on a wrong answer
typical of each exercise; and ``python -m exercises`` reports both in a table."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import minigrad as mg
from exercises import EXERCISES, grade as grading
from exercises.reference import ANSWERS

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = [e.number for e in EXERCISES]


@pytest.mark.parametrize("number", NUMBERS)
def test_each_grader_passes_on_the_library_and_fails_on_the_stub(monkeypatch, number):
    monkeypatch.setenv("DEEPINSIDE_EXERCISES", "reference")
    assert grading.grade(number) == (True, None)
    monkeypatch.setenv("DEEPINSIDE_EXERCISES", "learner")
    passed, message = grading.grade(number)
    assert not passed and message.startswith(f"not written yet: exercise {number}:"), message


def wrong(number, **changes):
    """The library's answer to ``number`` with some functions replaced by wrong ones."""
    return SimpleNamespace(**dict(vars(ANSWERS[number]), **changes))


def conv_backward_dx_doubled(x, w, g, stride, padding):
    dx, dw, db = ANSWERS[2].conv2d_backward(x, w, g, stride, padding)
    return 2 * dx, dw, db


def true_convolution(x, w, b, stride, padding):
    return ANSWERS[2].conv2d_forward(x, w[:, :, ::-1, ::-1], b, stride, padding)    # the kernel flipped


def pool_backward_to_the_first_element(g, switches, x_shape, kernel, stride):
    dx = np.zeros(x_shape)
    dx[:, :, :stride * g.shape[2]:stride, :stride * g.shape[3]:stride] = g
    return dx


def gradient_instead_of_deconvnet(model, image, layer):
    import saliency
    return saliency.layer_gradient(model, image[None], layer, rule="gradient")[0][0]


def iou_of_exclusive_boxes(a, b):
    iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])                                    # noqa: E731
    return iw * ih / (area(a) + area(b) - iw * ih)


def em_without_the_covariance_floor(X, weights, means, covs, reg_covar):
    return ANSWERS[7].em_step(X, weights, means, covs, 0.0)


def beta_without_its_factor_2(img, gamma):
    weights, beta = ANSWERS[8].pairwise_weights(img, gamma)
    return ANSWERS[8].pairwise_weights(img * np.sqrt(2), gamma)[0], beta / 2


def mean_saliency(model, image, c):
    import saliency
    return np.abs(saliency.input_gradient(model, image[None], c)[0]).mean(axis=0)


def step_without_the_l2_term(model, image, c, lr, l2):
    return ANSWERS[5].class_model_step(model, image, c, lr, 0.0)


def cam_without_the_relu(model, batch, c, layer):
    from saliency.gradcam import activation_and_gradient
    acts, grads, _ = activation_and_gradient(model, batch, c, layer)
    return mg.backend.to_numpy((grads.mean(axis=(2, 3), keepdims=True) * acts).sum(axis=1))


WRONG = {
    1: [wrong(1, deconvnet=ANSWERS[1].gradient), wrong(1, guided=ANSWERS[1].deconvnet)],
    2: [wrong(2, conv2d_backward=conv_backward_dx_doubled), wrong(2, conv2d_forward=true_convolution)],
    3: [wrong(3, max_pool_backward=pool_backward_to_the_first_element)],
    4: [wrong(4, saliency_map=mean_saliency)],
    5: [wrong(5, class_model_step=step_without_the_l2_term)],
    6: [wrong(6, deconvnet_reconstruction=gradient_instead_of_deconvnet)],
    7: [wrong(7, em_step=em_without_the_covariance_floor)],
    8: [wrong(8, pairwise_weights=beta_without_its_factor_2),
        wrong(8, quantile_labels=lambda smap, fg, bg: ANSWERS[8].quantile_labels(smap, bg, fg)[::-1])],
    9: [wrong(9, devkit_iou=iou_of_exclusive_boxes)],
    10: [wrong(10, grad_cam=cam_without_the_relu)],
}


@pytest.mark.parametrize("number", NUMBERS)
def test_each_grader_fails_on_a_typical_mistake(monkeypatch, number):
    for answer in WRONG[number]:
        monkeypatch.setattr(grading, "answers", lambda n: answer)
        passed, message = grading.grade(number)
        assert not passed and ("expected" in message or "made no difference" in message), message
        assert "not written" not in message and "raised" not in message, message


def run_cli(*args, mode=None):
    env = dict(os.environ)
    env.pop("DEEPINSIDE_EXERCISES", None)
    if mode:
        env["DEEPINSIDE_EXERCISES"] = mode
    return subprocess.run([sys.executable, "-m", "exercises", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_the_command_line_on_the_stubs_and_on_the_reference():
    r = run_cli()
    assert r.returncode == 1 and r.stdout.count("not written") == 10
    assert "0 of 10 pass. Next: exercises/e01_relu_rules.py (python -m exercises --check 1)" in r.stdout
    r = run_cli(mode="reference")
    assert r.returncode == 0 and r.stdout.count(" pass ") == 10 and "10 of 10 pass." in r.stdout
    r = run_cli("--check", "7")
    assert r.returncode == 1 and "not written yet: exercise 7: em_step" in r.stdout
    assert run_cli("--check", "3", mode="reference").returncode == 0
    for args, mode, line in ((("--check", "11"), None, "--check: no exercise 11; they are numbered 1 to 10"),
                             ((), "teacher", "DEEPINSIDE_EXERCISES must be one of learner, reference, not 'teacher'")):
        r = run_cli(*args, mode=mode)
        assert r.returncode == 2 and line in r.stderr and "Traceback" not in r.stderr
