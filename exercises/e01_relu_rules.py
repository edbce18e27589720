"""Exercise 1: ReLU's three backward rules (paper Sec. 4).

A ReLU's forward is y = max(x, 0). Going backwards, the signal R_{n+1} = g arrives at its output and
the rule says what leaves at its input. The three rules differ only here:

    gradient:   R_n = g * [x > 0]            (the chain rule)
    deconvnet:  R_n = g * [g > 0]            (Zeiler & Fergus: the forward pass plays no part)
    guided:     R_n = g * [g > 0] * [x > 0]  (both)

Arguments: ``x_positive``, a bool array [x > 0] (the forward's switch); ``g``, a float array of the same
shape. Return an array of g's shape and dtype. Hint: a bool array times a float array is the float array
with zeros where the bool is False. Graded exactly against minigrad/relu_rules.py.
"""


def gradient(x_positive, g):
    raise NotImplementedError("exercise 1: gradient(x_positive, g)")


def deconvnet(x_positive, g):
    raise NotImplementedError("exercise 1: deconvnet(x_positive, g)")


def guided(x_positive, g):
    raise NotImplementedError("exercise 1: guided(x_positive, g)")
