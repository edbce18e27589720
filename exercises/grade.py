"""The graders: each compares an exercise's functions (``answers(n)``: yours, or the library's in
reference mode) with the engine's on random float64 inputs, and raises ``Failure`` with what differs.
A backward is also checked against finite differences of your own forward (``mg.gradcheck``)."""
import traceback
from pathlib import Path

import numpy as np

import minigrad as mg
import saliency
from minigrad import functional as F, relu_rules
from minigrad.gradcheck import GradcheckError
from minigrad.tensor import Function

from . import answers
from .reference import ANSWERS as LIBRARY

TOL = 1e-9          # float64, the same maths written another way: rounding is about 1e-15 of the values


class Failure(Exception):
    """A grader's verdict: which output differs, where, received against expected."""


def compare(name, got, want, tol=TOL):
    """Failure unless ``got`` equals ``want`` within ``tol`` of the largest |value| (0: exactly)."""
    got, want = np.asarray(mg.backend.to_numpy(got)), np.asarray(mg.backend.to_numpy(want))
    if got.shape != want.shape:
        raise Failure(f"{name}: received shape {got.shape}, expected {want.shape}")
    if want.dtype == bool or got.dtype == bool:
        wrong = np.argwhere(got != want)
        if len(wrong):
            i = tuple(int(v) for v in wrong[0])
            raise Failure(f"{name}: {len(wrong)} of {want.size} elements differ; the first at {i}: received "
                          f"{got[i]}, expected {want[i]}")
        return
    err = np.abs(got.astype(np.float64) - want)
    if not np.isfinite(got).all():
        raise Failure(f"{name}: received NaN or Inf")
    if err.size and err.max() > tol * max(1.0, float(np.abs(want).max())):
        i = np.unravel_index(int(err.argmax()), err.shape)
        bound = f"tolerance {tol:g} of the largest |value|" if tol else "they must be equal exactly"
        raise Failure(f"{name}: worst element {tuple(int(v) for v in i)}: received {got[i]:.10g}, expected "
                      f"{want[i]:.10g} (difference {err[i]:.3g}; {bound})")


def gradcheck(name, forward, backward, inputs):
    """Your backward against finite differences of your forward (float64)."""
    class Yours(Function):
        @staticmethod
        def forward(ctx, *arrays):
            ctx.save_for_backward(*arrays)
            return forward(ctx, *arrays)

        @staticmethod
        def backward(ctx, g):
            return backward(ctx, g)
    try:
        mg.gradcheck(lambda *ts: Yours.apply(*ts), [mg.Tensor(a, requires_grad=True) for a in inputs])
    except GradcheckError as e:
        raise Failure(f"{name}, checked by finite differences of your forward: {e}") from None


def tiny_vgg():
    """A two-block VGG in float64 with random weights, in eval mode: input (N, 3, 8, 8), 3 classes."""
    from models import vgg
    model = vgg.build({"blocks": [[4], [6]], "fc": [8], "num_classes": 3, "input_size": 8}, seed=0)
    return model.to(dtype=np.float64).eval()


# ---- the graders, one per exercise ---------------------------------------------------------------
def grade_1(yours, rng):
    for rule in relu_rules.RULES:
        x_positive, g = rng.random((4, 5, 6)) > 0.5, rng.standard_normal((4, 5, 6))
        compare(f"{rule}(x_positive, g)", getattr(yours, rule)(x_positive, g), getattr(relu_rules, rule)(x_positive, g), 0)


def grade_2(yours, rng):
    for xs, ws, stride, padding in (((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1)),
                                    ((1, 2, 9, 8), (3, 2, 3, 2), (2, 1), (0, 1)),
                                    ((2, 2, 6, 7), (2, 2, 5, 5), (2, 2), (2, 2))):
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
        case = f"x {xs}, w {ws}, stride {stride}, padding {padding}"
        out = yours.conv2d_forward(x, w, b, stride, padding)
        tensors = [mg.Tensor(a, requires_grad=True) for a in (x, w, b)]
        with mg.use_ops("simple"):
            want = F.conv2d(*tensors, stride, padding)
        compare(f"conv2d_forward, {case}", out, want.data)
        g = rng.standard_normal(want.shape)
        want.backward(g)
        for name, got, t in zip(("dx", "dw", "db"), yours.conv2d_backward(x, w, g, stride, padding), tensors):
            compare(f"conv2d_backward's {name}, {case}", got, t.grad)
    x, w, b = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    gradcheck("conv2d", lambda ctx, x, w, b: yours.conv2d_forward(x, w, b, (2, 1), (1, 1)),
              lambda ctx, g: tuple(yours.conv2d_backward(*ctx.saved[:2], g, (2, 1), (1, 1))), [x, w, b])


def grade_3(yours, rng):
    for shape, kernel, stride in (((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 3, 2), ((1, 1, 6, 6), 2, 1)):
        x = rng.permutation(np.prod(shape)).reshape(shape) / 7.0 - 3          # distinct: no ties
        case = f"x {shape}, kernel {kernel}, stride {stride}"
        out, switches = yours.max_pool_forward(x, kernel, stride)
        t = mg.Tensor(x, requires_grad=True)
        want = F.max_pool2d(t, kernel, stride)
        compare(f"max_pool_forward, {case}", out, want.data)
        g = rng.standard_normal(want.shape)
        want.backward(g)
        compare(f"max_pool_backward, {case}", yours.max_pool_backward(g, switches, x.shape, kernel, stride), t.grad)

    def forward(ctx, x):
        out, ctx.switches = yours.max_pool_forward(x, 3, 2)
        return out
    x = rng.permutation(2 * 7 * 7).reshape(1, 2, 7, 7) / 7.0
    gradcheck("max pooling", forward, lambda ctx, g: yours.max_pool_backward(g, ctx.switches, (1, 2, 7, 7), 3, 2), [x])


def grade_4(yours, rng):
    model = tiny_vgg()
    for c in range(3):
        image = rng.standard_normal((3, 8, 8))
        compare(f"saliency_map(model, image, {c})", yours.saliency_map(model, image, c),
                LIBRARY[4].saliency_map(model, image, c))


def grade_5(yours, rng):
    model = tiny_vgg()
    image = rng.standard_normal((3, 8, 8)) * 0.1
    compare("class_model_step(model, image, 2, lr=1.0, l2=1e-3)", yours.class_model_step(model, image.copy(), 2, 1.0, 1e-3),
            LIBRARY[5].class_model_step(model, image, 2, 1.0, 1e-3))
    compare("paper_class_model(model, 1, steps=6, lr=1.0, l2=1e-3)", yours.paper_class_model(model, 1, 6, 1.0, 1e-3),
            LIBRARY[5].paper_class_model(model, 1, 6, 1.0, 1e-3))


def grade_6(yours, rng):
    model = tiny_vgg()
    for layer in ("relu2_1", "pool2"):
        image = rng.standard_normal((3, 8, 8))
        want = LIBRARY[6].deconvnet_reconstruction(model, image, layer)
        plain = saliency.layer_gradient(model, image[None], layer, rule="gradient")[0][0]
        assert np.abs(want - plain).max() > 1e-3 * np.abs(plain).max(), "the rules agree here: a grader that cannot fail"
        got = yours.deconvnet_reconstruction(model, image, layer)
        if np.allclose(got, plain, rtol=TOL, atol=TOL * np.abs(plain).max()):
            raise Failure(f"deconvnet_reconstruction(model, image, {layer!r}) is the plain gradient: the ReLU rule "
                          "made no difference (run the backward pass inside mg.relu_rule('deconvnet'))")
        compare(f"deconvnet_reconstruction(model, image, {layer!r})", got, want)


def random_gmm(rng, K=3, D=3):
    weights = rng.uniform(0.5, 1.5, K)
    A = rng.standard_normal((K, D, D))
    covs = A @ A.transpose(0, 2, 1) + 0.3 * np.eye(D)
    return weights / weights.sum(), rng.standard_normal((K, D)) * 2, covs


def grade_7(yours, rng):
    X = np.concatenate([rng.standard_normal((100, 3)) * s + m for s, m in ((0.5, -2), (1.0, 0), (0.7, 2.5))])
    weights, means, covs = random_gmm(rng)
    got = yours.em_step(X, weights.copy(), means.copy(), covs.copy(), 1e-6)
    for name, a, b in zip(("weights", "means", "covs"), got, LIBRARY[7].em_step(X, weights, means, covs, 1e-6)):
        compare(f"em_step's {name}", a, b)


def grade_8(yours, rng):
    smap = rng.random((20, 24)) ** 3
    for q in ((0.95, 0.3), (0.995, 0.005)):
        for name, a, b in zip(("foreground", "background"), yours.quantile_labels(smap, *q), LIBRARY[8].quantile_labels(smap, *q)):
            compare(f"quantile_labels(smap, {q[0]}, {q[1]})'s {name}", a, b, 0)
    img = rng.random((12, 10, 3))
    got, got_beta = yours.pairwise_weights(img, 150.0)
    want, want_beta = LIBRARY[8].pairwise_weights(img, 150.0)
    compare("pairwise_weights' beta", got_beta, want_beta)
    if len(got) != 4:
        raise Failure(f"pairwise_weights: received {len(got)} weight arrays, expected 4 (right, down, down-right, down-left)")
    for name, a, b in zip(("right", "down", "down-right", "down-left"), got, want):
        compare(f"pairwise_weights' {name} weights", a, b)
    X = rng.standard_normal((50, 3))
    params = random_gmm(rng)
    compare("log_density(X, weights, means, covs)", yours.log_density(X, *params), LIBRARY[8].log_density(X, *params))


def grade_9(yours, rng):
    for k in range(4):
        mask = rng.random((20, 22)) > 0.6
        largest = yours.largest_component(mask)
        compare(f"largest_component (mask {k})", np.asarray(largest, bool), LIBRARY[9].largest_component(mask), 0)
        compare(f"bounding_box (mask {k})", np.array(yours.bounding_box(largest)), np.array(LIBRARY[9].bounding_box(largest)), 0)
    for k in range(20):
        a, b = (box(rng) for _ in range(2))
        compare(f"devkit_iou({a}, {b})", yours.devkit_iou(a, b), LIBRARY[9].devkit_iou(a, b), 1e-12)


def grade_10(yours, rng):
    model = tiny_vgg()
    batch = rng.standard_normal((2, 3, 8, 8))
    for layer in ("relu2_1", "relu1_1"):
        compare(f"grad_cam(model, batch, 1, {layer!r})", yours.grad_cam(model, batch, 1, layer),
                LIBRARY[10].grad_cam(model, batch, 1, layer))


def box(rng):
    """A random inclusive box (x0, y0, x1, y1) in a 30 x 30 image."""
    (x0, x1), (y0, y1) = np.sort(rng.integers(0, 30, 2)), np.sort(rng.integers(0, 30, 2))
    return int(x0), int(y0), int(x1), int(y1)


GRADERS = {n: globals()[f"grade_{n}"] for n in range(1, 11)}


def grade(number):
    """(passed, message) for exercise ``number``: None when it passes; 'not written yet: ...' for a stub."""
    rng = np.random.default_rng(number)
    try:
        GRADERS[number](answers(number), rng)
    except NotImplementedError as e:
        return False, f"not written yet: {e}"
    except Failure as e:
        return False, str(e)
    except Exception as e:                           # an error in your code: one line and where, no traceback
        frame = traceback.extract_tb(e.__traceback__)[-1]
        return False, f"your code raised {type(e).__name__}: {e} ({Path(frame.filename).name}, line {frame.lineno})"
    return True, None
