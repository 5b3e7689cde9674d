r"""Empirical NTK of any torch module, through :mod:`torch.func`.

:math:`\Theta(x, x')_{ab} = \sum_p \partial_p f_a(x)\,\partial_p f_b(x')` over the module's
trainable parameters (buffers are held fixed and passed through ``functional_call``).

Two methods (Novak et al. 2022, "Fast Finite Width Neural Tangent Kernel"):

- ``jacobian``: per-example Jacobians ``vmap(jacrev(f))``, then one matrix product;
  cost :math:`N O\,[\text{fwd}] + N^2 O^2 P`, memory :math:`N O P` per block;
- ``ntk_vp``: NTK-vector products (a VJP then a JVP per output direction), no Jacobian kept;
  cost :math:`N^2 O\,[\text{fwd}]`, better for many parameters and few pairs.

``mode``: ``full`` (N, M, O, O), ``trace`` (N, M) or ``diagonal`` (N, M, O) over outputs.
The (x1, x2) kernel is computed in tiles whose Jacobians fit ``memory_bytes``, so memory stays
bounded whatever the number of inputs. Layers that couple examples of a batch (BatchNorm in
training mode) break the per-example definition and are refused.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from ..core.checks import ConfigError, choice, finite_array
from ..core.runtime import available_memory, progress
from ..linalg.blocks import block_rows
from ..linalg.montecarlo import RunningMean

MODES = ("full", "trace", "diagonal")
METHODS = ("auto", "jacobian", "ntk_vp")


def _check_module(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            kind = type(module).__name__
            raise ConfigError(f"model layer {name or kind} ({kind}) "
                              "couples the examples of a batch in training mode; call "
                              "model.eval() to use its running statistics")


def _contract_one(j1: Tensor, j2: Tensor, mode: str) -> Tensor:
    """j1 (B1, O, p), j2 (B2, O, p) -> the kernel block in ``mode`` (one matrix product)."""
    if mode == "full":
        b1, o, p = j1.shape
        return (j1.reshape(-1, p) @ j2.reshape(-1, p).T).reshape(b1, o, -1, o).transpose(1, 2)
    if mode == "trace":
        return j1.reshape(j1.shape[0], -1) @ j2.reshape(j2.shape[0], -1).T
    return torch.einsum("nap,map->nma", j1, j2)


def _contract(j1: dict[str, Tensor], j2: dict[str, Tensor], mode: str) -> Tensor:
    """Sum over parameter tensors: no concatenated copy of the Jacobians is made."""
    return sum(_contract_one(j1[k], j2[k], mode) for k in j1)


class EmpiricalNTK:
    r"""Empirical NTK :math:`\Theta(x, x') = \sum_p \partial_p f(x)\,\partial_p f(x')^\top` of
    ``model`` at its current parameters, by torch.func.

    ``ntk(x1, x2=None, mode="trace", method="auto", block_rows=None)`` returns the kernel:
    ``mode`` ``full`` (n1, n2, O, O), ``trace`` (n1, n2: the sum over outputs) or ``diagonal``
    (n1, n2, O); ``method`` ``jacobian`` (contract per-example Jacobians), ``ntk_vp``
    (NTK-vector products) or ``auto`` (the cheaper by a cost model); rows are tiled within the
    memory budget. Buffers are used as they are; BatchNorm in training mode is refused.

    >>> ntk = EmpiricalNTK(model)
    >>> K = ntk(x1, x2, mode="trace")          # (n1, n2)

    Parameters
    ----------
    model : torch.nn.Module
        Any module with trainable parameters, applied to a batch.
    memory_bytes : int, optional
        Budget for temporaries (default: a quarter of the device's free memory).
    parameters : list of str, optional
        Names of the parameters to differentiate (default: those with ``requires_grad``); the
        others are held fixed, so the NTKs of a partition of the parameters add up to the NTK.
    """

    def __init__(self, model: nn.Module, memory_bytes: int | None = None,
                 parameters: list[str] | None = None):
        _check_module(model)
        self.model = model
        named = dict(model.named_parameters())
        if parameters is not None:
            unknown = sorted(set(parameters) - set(named))
            if unknown:
                raise ConfigError(f"parameters: {', '.join(unknown)} not among the model's "
                                  f"({', '.join(named)})")
        chosen = [k for k, v in named.items()
                  if (v.requires_grad if parameters is None else k in parameters)]
        self.params = {k: named[k].detach() for k in chosen}
        if not self.params:
            raise ConfigError("model has no trainable parameters")
        # the other parameters enter the function as constants, like buffers
        self.buffers = {**{k: v.detach() for k, v in named.items() if k not in self.params},
                        **{k: v.detach() for k, v in model.named_buffers()}}
        self.num_params = sum(v.numel() for v in self.params.values())
        ref = next(iter(self.params.values()))
        self.device, self.dtype = ref.device, ref.dtype
        self.memory_bytes = memory_bytes or int(0.25 * available_memory(self.device))

    def _f(self, params, x: Tensor) -> Tensor:
        return functional_call(self.model, (params, self.buffers), (x.unsqueeze(0),)).reshape(-1)

    def jacobians(self, x: Tensor) -> dict[str, Tensor]:
        """Per-example Jacobians by parameter name, each of shape (N, O, numel)."""
        jac = vmap(jacrev(self._f), in_dims=(None, 0))(self.params, x)
        return {k: j.reshape(x.shape[0], j.shape[1], -1) for k, j in jac.items()}

    def _ntk_vp(self, x1: Tensor, x2: Tensor, mode: str) -> Tensor:
        def f1(p):
            return vmap(self._f, in_dims=(None, 0))(p, x1)

        def f2(p):
            return vmap(self._f, in_dims=(None, 0))(p, x2)

        out, vjp_fn = vjp(f1, self.params)

        def column(vec):
            return jvp(f2, (self.params,), vjp_fn(vec))[1]

        n1, o = out.shape
        basis = torch.eye(n1 * o, dtype=out.dtype, device=out.device).view(n1 * o, n1, o)
        chunk = max(1, self.memory_bytes // (4 * self.num_params * out.element_size()))
        block = vmap(column, chunk_size=chunk)(basis).view(n1, o, x2.shape[0], o)
        block = block.permute(0, 2, 1, 3)  # (N1, N2, O, O)
        if mode == "trace":
            return block.diagonal(dim1=2, dim2=3).sum(-1)
        if mode == "diagonal":
            return block.diagonal(dim1=2, dim2=3)
        return block

    def output_dim(self, x: Tensor) -> int:
        """Outputs per example, from one forward pass (its failure names the input)."""
        try:
            with torch.no_grad():
                return self._f(self.params, x[0]).numel()
        except RuntimeError as err:
            raise ConfigError(f"x1: the model cannot evaluate one example of shape "
                              f"{tuple(x.shape[1:])} ({err})") from None

    #: cost of writing one per-example Jacobian entry, in flops (measured on a width-2000,
    #: depth-4 MLP on 2 CPU cores: 1x129 kernel 12.2 s by Jacobians, 0.63 s by products)
    JACOBIAN_WRITE_FLOPS = 150
    #: the contraction is one large matrix product, this many times more efficient per flop
    #: than the VJP/JVP passes (H100: 4-output 128x128 kernel, Jacobians 1.8x faster)
    GEMM_EFFICIENCY = 8

    def choose_method(self, n1: int, n2: int, outputs: int) -> str:
        """The cheaper method by the cost model of the module docstring (P parameters,
        forward F = 2P): Jacobians (n1 + n2) O (3F + 150 P) + n1 n2 O^2 P / 8 against
        products 3 F (n1 + n1 O n2)."""
        p = self.num_params
        jac = ((n1 + n2) * outputs * (6 + self.JACOBIAN_WRITE_FLOPS) * p
               + n1 * n2 * outputs**2 * p / self.GEMM_EFFICIENCY)
        vp = 6 * p * (n1 + n1 * outputs * n2)
        return "jacobian" if jac <= vp else "ntk_vp"

    def block_rows(self, outputs: int) -> int:
        """Examples per tile so that two tiles of Jacobians (and the temporaries of building
        one) fit in the memory budget."""
        per_row = outputs * self.num_params * torch.finfo(self.dtype).bits // 8
        return block_rows(4 * per_row, self.memory_bytes)

    def __call__(self, x1: Tensor, x2: Tensor | None = None, mode: str = "trace",
                 method: str = "auto", block_rows: int | None = None) -> Tensor:
        choice("mode", mode, MODES)
        choice("method", method, METHODS)
        symmetric = x2 is None
        x2 = x1 if symmetric else x2
        x1, x2 = finite_array("x1", x1), finite_array("x2", x2)
        if not len(x1) or not len(x2):
            raise ConfigError(f"x1 and x2 must hold at least one example (got shapes "
                              f"{tuple(x1.shape)} and {tuple(x2.shape)})")
        if x1.shape[1:] != x2.shape[1:]:
            raise ConfigError(f"x1 and x2 must have the same per-example shape; got "
                              f"{tuple(x1.shape[1:])} and {tuple(x2.shape[1:])}")
        x1, x2 = x1.to(self.device, self.dtype), x2.to(self.device, self.dtype)
        o = self.output_dim(x1)
        if method == "auto":
            method = self.choose_method(x1.shape[0], x2.shape[0], o)
        step = block_rows or self.block_rows(o)
        n1, n2 = x1.shape[0], x2.shape[0]
        shape = {"full": (n1, n2, o, o), "trace": (n1, n2), "diagonal": (n1, n2, o)}[mode]
        out = torch.empty(shape, dtype=self.dtype, device=self.device)
        starts = range(0, n1, step)
        for s in progress(starts, f"empirical NTK ({method})"):
            e = min(s + step, n1)
            j1 = self.jacobians(x1[s:e]) if method == "jacobian" else None
            for t in range(s if symmetric else 0, n2, step):
                u = min(t + step, n2)
                if method == "jacobian":
                    j2 = j1 if (symmetric and t == s) else self.jacobians(x2[t:u])
                    block = _contract(j1, j2, mode)
                else:
                    block = self._ntk_vp(x1[s:e], x2[t:u], mode)
                out[s:e, t:u] = block
                if symmetric and t != s:
                    out[t:u, s:e] = block.transpose(0, 1).transpose(2, 3) if mode == "full" \
                        else block.transpose(0, 1)
        return out


def empirical_ntk(model: nn.Module, x1: Tensor, x2: Tensor | None = None, mode: str = "trace",
                  method: str = "auto", memory_bytes: int | None = None) -> Tensor:
    """Empirical NTK of ``model`` between ``x1`` and ``x2`` (see :class:`EmpiricalNTK`).

    Parameters
    ----------
    model : torch.nn.Module
    x1 : Tensor
        Examples, (n1, ...).
    x2 : Tensor, optional
        Examples, (n2, ...); None for ``x1`` against itself.
    mode : str
        ``full``, ``trace`` or ``diagonal``.
    method : str
        ``auto``, ``jacobian`` or ``ntk_vp``.
    memory_bytes : int, optional
        Budget for temporaries.

    Returns
    -------
    Tensor
        (n1, n2), (n1, n2, O) or (n1, n2, O, O) by ``mode``.
    """
    return EmpiricalNTK(model, memory_bytes)(x1, x2, mode=mode, method=method)


def monte_carlo_ntk(make_model, x1: Tensor, x2: Tensor | None = None, samples: int = 10,
                    mode: str = "trace", **kwargs) -> tuple[Tensor, Tensor]:
    """Empirical NTK averaged over ``samples`` initializations ``make_model(k)``.

    Parameters
    ----------
    make_model : callable
        ``make_model(k)`` returns the k-th freshly initialized module.
    x1, x2 : Tensor
        As for :func:`empirical_ntk`.
    samples : int
        Initializations.
    mode : str
        ``full``, ``trace`` or ``diagonal``.
    **kwargs
        Passed to :class:`EmpiricalNTK`'s call.

    Returns
    -------
    (Tensor, Tensor)
        The mean and its entrywise standard error (infinite for one sample).
    """
    if samples < 1:
        raise ConfigError(f"samples must be an integer >= 1 (got {samples!r})")
    estimate = RunningMean()
    for k in range(samples):
        estimate.add(empirical_ntk(make_model(k), x1, x2, mode=mode, **kwargs))
    return estimate.mean, estimate.stderr
