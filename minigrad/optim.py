"""Optimisers that update parameters in place from their ``.grad``.

Scalars are Python floats, so float32 parameters stay float32 (NumPy 2 promotion rules).
"""


class Optimizer:
    def __init__(self, params):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError(f"{type(self).__name__}: no parameters that require grad")

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class SGD(Optimizer):
    """v = momentum * v + (g + weight_decay * p);  p -= lr * v."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.velocity = [None] * len(self.params)

    def step(self):
        for k, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v = self.velocity[k]
                self.velocity[k] = g.copy() if v is None else self.momentum * v + g
                g = self.velocity[k]
            p.data -= self.lr * g


class Adam(Optimizer):
    """Kingma & Ba (2015), with bias correction; weight decay added to the gradient (L2)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr, self.eps, self.weight_decay = float(lr), float(eps), float(weight_decay)
        self.b1, self.b2 = float(betas[0]), float(betas[1])
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)
        self.t = 0

    def step(self):
        self.t += 1
        c1, c2 = 1.0 - self.b1 ** self.t, 1.0 - self.b2 ** self.t
        for k, p in enumerate(self.params):
            if p.grad is None:
                continue
            xp = p.xp
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.m[k] is None:
                self.m[k], self.v[k] = xp.zeros_like(p.data), xp.zeros_like(p.data)
            self.m[k] = self.b1 * self.m[k] + (1.0 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1.0 - self.b2) * (g * g)
            p.data -= (self.lr / c1) * self.m[k] / (xp.sqrt(self.v[k] / c2) + self.eps)
