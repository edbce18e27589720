"""Exercise 5: the paper's class model (Sec. 2).

    I* = argmax_I  S_c(I) - l2 * ||I||^2,   by gradient ascent from the zero image:
    I <- I + lr * (dS_c/dI - 2 * l2 * I)

(the paper: 300 steps, lr 1, l2 1e-3; S_c the logit). Arguments: ``model`` a minigrad network in eval
mode, ``image`` (3, H, W) float64, ``c`` the class, ``lr``, ``l2`` floats, ``steps`` an int. Return the new
image (3, H, W) as a NumPy array; ``paper_class_model`` starts from zeros of the model's input size
(``model.config.input_size``) and takes ``steps`` steps. Hint: exercise 4's backward pass, then the update;
the loop is the step, repeated. The answer: saliency/class_model.py, paper_class_model.
"""


def class_model_step(model, image, c, lr, l2):
    raise NotImplementedError("exercise 5: class_model_step(model, image, c, lr, l2)")


def paper_class_model(model, c, steps, lr, l2):
    raise NotImplementedError("exercise 5: paper_class_model(model, c, steps, lr, l2)")
