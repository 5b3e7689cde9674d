"""Functions a user would write in a module of their own (``module:function`` settings)."""

import math

import torch

from rfattn.rfa import rfa_relu_kernel


def similarity_relu(x0, X):
    """The built-in ``similarity relu`` target before normalization."""
    d = x0.shape[1]
    return torch.relu(torch.einsum("nd,nid->ni", x0, X) * math.sqrt(d)).mean(1)


def oscillating(x0, X):
    return torch.sin(3.0 * torch.einsum("nd,nid->ni", x0, X)).mean(1)


def relu(scores):
    return torch.relu(scores)


def numpy_relu(scores):
    return scores.clamp(min=0).numpy()


def rfa_kernel(x0, X, y0, Y):
    """The closed-form infinite-head kernel of zero-mean ReLU RFA, entry variance 1/4."""
    return rfa_relu_kernel(x0, X, y0, Y, variance=0.25)


def exp_dot(t):
    return torch.exp(t)


# bad plug-ins, one defect each
def wrong_shape(x0, X):
    return torch.zeros(x0.shape[0], 2)


def with_nan(x0, X):
    return torch.full((x0.shape[0],), math.nan)


def constant(x0, X):
    return torch.ones(x0.shape[0])


def raises(x0, X):
    raise RuntimeError("no")


def one_argument(x0):
    return x0[:, 0]


def not_elementwise(scores):
    return scores - scores.mean(-1, keepdim=True)


def asymmetric_kernel(x0, X, y0, Y):
    return x0 @ y0.T + 0.1 * x0[:, :1] @ torch.ones(1, y0.shape[0], dtype=x0.dtype)


NOT_CALLABLE = 3
