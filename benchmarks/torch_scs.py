"""The same SCS networks in PyTorch, written to be fast, for side-by-side timing.

Used by bench_step.py when PyTorch is installed (``pip install ".[torch]"``); minisc itself
never imports it. ``from_minisc(model)`` builds the PyTorch twin of a minisc Sequential made of
SharpCosSim2D (grouped and depthwise, with or without the output scale alpha), MaxAbsPool2D
(ceil mode too), Flatten and Dense layers, with the same parameter values, so the benchmark can
check that both compute the same numbers before timing them.

Each piece is written the way a PyTorch user who cares about speed would write it, and does
the same arithmetic as minisc:

- dot products: ``F.conv2d`` with the unit-length kernels;
- patch norms: ``avg_pool2d`` of the channel-summed ``x**2`` (times kh*kw), a box sum;
- the signed power: an ``autograd.Function`` with a hand-written backward, the same formulas
  as minisc (``e = |c|**(p-1)``, ``y = c * e``, ``dy/dc = p * e``), rather than autograd
  through ``pow``, which would evaluate and store more;
- MaxAbsPool: ``max_pool2d`` of ``|x|`` with ``return_indices`` and a ``gather``.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-12      # inside the square roots, as in minisc
TINY = 1e-30     # |c| is clamped to this before the power and the log


class SignedPower(torch.autograd.Function):
    """y = sign(c) * max(|c|, TINY)**p, per output channel p; backward by hand."""

    @staticmethod
    def forward(ctx, c, p):
        # c: (N, K, H, W), p: (K,)
        pk = p.view(1, -1, 1, 1)
        a = c.abs()
        live = a > TINY
        log_a = a.clamp_min_(TINY).log_()
        e = torch.exp(log_a * (pk - 1))                          # a**(p-1)
        y = c * e                                                # sign(c) * a**p
        ctx.save_for_backward(p, y, e, log_a, live)
        return y

    @staticmethod
    def backward(ctx, g):
        p, y, e, log_a, live = ctx.saved_tensors
        # dy/dp = y * ln a;   dy/dc = p * a**(p-1) = p * e, 0 where the clamp acted
        gp = (g * y * log_a).sum((0, 2, 3))
        gc = g * e * (p.view(1, -1, 1, 1) * live)
        return gc, gp


class SCS2d(nn.Module):
    """Sharpened cosine similarity, parameters named and shaped as in minisc."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 p_init=2.0, q_init=0.1, alpha_init=None):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.kernel_size, self.stride, self.padding, self.groups = (kh, kw), stride, padding, groups
        w = torch.empty(out_channels, in_channels // groups, kh, kw)
        nn.init.xavier_uniform_(w)
        self.w = nn.Parameter(w)
        self.p = nn.Parameter(torch.full((out_channels,), float(p_init)))
        self.q = nn.Parameter(torch.full((1,), float(q_init)))
        self.alpha = None if alpha_init is None else nn.Parameter(torch.full((1,), float(alpha_init)))

    def forward(self, x):
        kh, kw = self.kernel_size
        n, c_in, h, w_in = x.shape
        g, w = self.groups, self.w
        norm_w = torch.sqrt((w * w).sum((1, 2, 3), keepdim=True) + EPS)
        dot = F.conv2d(x, w / norm_w, stride=self.stride, padding=self.padding, groups=g)
        # |s|**2 of every patch: a kh x kw box sum of x**2 summed over each group's channels
        x2 = (x * x).view(n, g, c_in // g, h, w_in).sum(2)
        sq = F.avg_pool2d(x2, (kh, kw), self.stride, self.padding, count_include_pad=True) * (kh * kw)
        norm_s = torch.sqrt(sq + EPS) + self.q                         # (N, G, Ho, Wo)
        _, k, ho, wo = dot.shape
        c = (dot.view(n, g, k // g, ho, wo) / norm_s.unsqueeze(2)).view(n, k, ho, wo)
        y = SignedPower.apply(c, self.p)
        return y if self.alpha is None else self.alpha * y


class MaxAbsPool2d(nn.Module):
    """The element of largest |x| in each window, sign kept (first one on ties)."""

    def __init__(self, pool_size=2, ceil_mode=False):
        super().__init__()
        self.pool_size, self.ceil_mode = pool_size, ceil_mode

    def forward(self, x):
        _, idx = F.max_pool2d(x.abs(), self.pool_size, ceil_mode=self.ceil_mode, return_indices=True)
        return x.flatten(2).gather(2, idx.flatten(2)).view_as(idx)


def from_minisc(model):
    """A torch.nn.Sequential computing what the minisc Sequential ``model`` computes.

    Supports SharpCosSim2D, MaxAbsPool2D, Flatten and Dense; parameters are copied (float32).
    """
    layers = []
    for layer in model.layers:
        kind = type(layer).__name__
        params = {k: torch.from_numpy(v.astype("float32")) for k, v in layer.params.items()}
        if kind == "SharpCosSim2D":
            t = SCS2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                      layer.padding, layer.groups, alpha_init=layer.alpha_init)
            with torch.no_grad():
                for name, value in params.items():
                    getattr(t, name).copy_(value)
        elif kind == "MaxAbsPool2D":
            t = MaxAbsPool2d(tuple(layer.pool_size), layer.ceil_mode)
        elif kind == "Flatten":
            t = nn.Flatten()
        elif kind == "Dense":
            t = nn.Linear(layer.n_inputs, layer.n_outputs)
            with torch.no_grad():
                t.weight.copy_(params["w"].T)          # minisc: (in, out); torch: (out, in)
                t.bias.copy_(params["b"])
        else:
            raise TypeError(f"from_minisc: no PyTorch twin for layer {kind}")
        layers.append(t)
    return nn.Sequential(*layers)


def minisc_grads(torch_model):
    """The PyTorch gradients in minisc's names and layouts: a list of {name: array} per layer."""
    out = []
    for t in torch_model:
        if isinstance(t, SCS2d):
            out.append({name: getattr(t, name).grad.numpy() for name in ("w", "p", "q", "alpha")
                        if getattr(t, name) is not None})
        elif isinstance(t, nn.Linear):
            out.append({"w": t.weight.grad.numpy().T, "b": t.bias.grad.numpy()})
        else:
            out.append({})
    return out
