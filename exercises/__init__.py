"""Exercises: write the paper's parts yourself, graded against the engine.

Each file ``eNN_*.py`` holds stubs: the docstring gives the maths, the shapes and a hint, and the body
raises ``NotImplementedError`` until you write it. ``python -m exercises`` grades them all and names the
next one; ``python -m exercises --check N`` grades one and shows what differs (received against
expected, at the worst element). The graders (grade.py) compare your functions with the library's on
random inputs, in float64, and check a backward by finite differences of your own forward.

With ``DEEPINSIDE_EXERCISES=reference`` each exercise is answered by the library's own implementation
(reference.py), which is how the test suite checks the graders. docs/exercises.md says where each answer
lives in the library.
"""
import importlib
import os
from collections import namedtuple

Exercise = namedtuple("Exercise", "number module title section")

EXERCISES = [
    Exercise(1, "e01_relu_rules", "ReLU's three backward rules", "Sec. 4"),
    Exercise(2, "e02_conv2d", "conv2d forward and backward as kh*kw shifted GEMMs", "engine"),
    Exercise(3, "e03_max_pool", "max pooling with switches", "engine"),
    Exercise(4, "e04_saliency_map", "the image-specific saliency map", "Sec. 3"),
    Exercise(5, "e05_class_model", "the paper's class-model step and loop", "Sec. 2"),
    Exercise(6, "e06_deconvnet", "a deconvnet reconstruction is a gradient", "Sec. 4"),
    Exercise(7, "e07_gmm_em", "one EM step of the colour GMM", "Sec. 3.2"),
    Exercise(8, "e08_graphcut_terms", "the soft and hard labels, GraphCut's pairwise and unary terms", "Sec. 3.2"),
    Exercise(9, "e09_box", "the largest component, its box and the devkit's IoU", "Sec. 3.2"),
    Exercise(10, "e10_grad_cam", "Grad-CAM", "after the paper"),
]

MODES = ("learner", "reference")


def mode():
    """'learner' (your files, the default) or 'reference' (the library's answers): DEEPINSIDE_EXERCISES."""
    value = os.environ.get("DEEPINSIDE_EXERCISES", "learner") or "learner"
    if value not in MODES:
        raise ValueError(f"DEEPINSIDE_EXERCISES must be one of {', '.join(MODES)}, not {value!r}")
    return value


def answers(number):
    """The functions that answer exercise ``number``: your file's, or the library's in reference mode."""
    if mode() == "reference":
        from .reference import ANSWERS
        return ANSWERS[number]
    return importlib.import_module(f"exercises.{EXERCISES[number - 1].module}")
