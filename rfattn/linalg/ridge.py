r"""Ridge regression for a whole path of regularizations from one eigendecomposition.

Objective (the ``1/n`` convention; scikit-learn's ``alpha`` equals ``n * lam``):

.. math::  \hat w(\lambda) = \arg\min_w \tfrac1n \|y - \Phi w\|^2 + \lambda \|w\|^2
           = (\Phi^\top\Phi/n + \lambda I)^{-1} \Phi^\top y / n .

*Primal* (``n >= p``): :math:`\Phi^\top\Phi/n = V \operatorname{diag}(e) V^\top`, and the
prediction on :math:`\Phi_e` is :math:`(\Phi_e V)\operatorname{diag}(1/(e+\lambda))\,c` with
:math:`c = V^\top\Phi^\top y/n`.
*Dual* (``n < p``, or a kernel): :math:`K/n = U\operatorname{diag}(e)U^\top` with
:math:`K=\Phi\Phi^\top`, and the prediction is
:math:`(K_e U/n)\operatorname{diag}(1/(e+\lambda))\,U^\top y`.
Either way every prediction is ``A_e @ (c / (e + lam))``: one decomposition, then a matrix
product for all lambdas at once. Leave-one-out residuals are exact:
:math:`(y_i - \hat y_i)/(1 - H_{ii})` with :math:`H_{ii} = \sum_k B_{ik}/(e_k+\lambda)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.checks import ConfigError, finite_array, positive_ints
from ..core.runtime import progress


def check_data(name: str, data, y) -> tuple[Tensor, Tensor]:
    """``data`` (n, p) features or (n, n) Gram matrix and targets ``y`` (n,), finite; numpy
    arrays become float64 tensors."""
    data, y = finite_array(name, data), finite_array("y", y)
    if data.ndim != 2 or y.ndim != 1 or y.shape[0] != data.shape[0]:
        raise ConfigError(f"{name} must be (n, p) and y (n,) with the same n; got "
                          f"{tuple(data.shape)} and {tuple(y.shape)}")
    if data.shape[0] == 0:
        raise ConfigError(f"{name} must hold at least one sample (got {tuple(data.shape)})")
    return data, y.to(data)


def check_lambdas(lambdas) -> Tensor:
    """Check a list of regularizations.

    Parameters
    ----------
    lambdas : sequence of float or Tensor
        Each finite and >= 0.

    Returns
    -------
    Tensor
        A 1-D float64 tensor.
    """
    lam = torch.as_tensor(lambdas, dtype=torch.float64).reshape(-1)
    if lam.numel() == 0 or not torch.isfinite(lam).all() or (lam < 0).any():
        raise ConfigError(f"lambdas must be a non-empty list of finite numbers >= 0 "
                          f"(got {lambdas!r})")
    return lam


class SpectralRidge:
    r"""Ridge fitted once, evaluated for any set of lambdas.

    One eigendecomposition :math:`G = U\,\mathrm{diag}(e)\,U^\top` of the Gram (dual, n x n) or
    of the normal equations (primal, p x p) gives every :math:`\lambda` at the cost of a diagonal
    rescaling: predictions :math:`A\,(c / (e + n\lambda))` with the coordinates :math:`c` of the
    targets. Build with :meth:`from_features` (primal or dual by shape), :meth:`from_gram` (kernel
    ridge) or :meth:`from_normal_equations` (a Gram accumulated over a growing prefix of samples).

    Parameters
    ----------
    spectrum : Tensor
        Eigenvalues e of the Gram or of the normal equations, (r,).
    coef : Tensor
        The targets' coordinates on the eigenvectors, (r,).
    y : Tensor
        Training targets, (n,).
    form : str
        ``primal`` or ``dual``.
    basis : Tensor
        The eigenvectors, in feature space (primal) or sample space (dual).
    train_features : Tensor or None
        The training features (primal form), for predictions on the training set.
    """

    def __init__(self, spectrum: Tensor, coef: Tensor, y: Tensor, form: str, basis: Tensor,
                 train_features: Tensor | None):
        self.spectrum = spectrum.clamp_min(0.0)  # round-off can give tiny negative values
        self.coef, self.y, self.form, self.basis = coef, y, form, basis
        self.train_features = train_features
        self.n = y.shape[0]
        self._fitted_basis: Tensor | None = None

    @property
    def fitted_basis(self) -> Tensor:
        """A_train, with train predictions ``A_train @ (coef / (e + lam))`` (built on demand:
        in the primal form it costs one n x p x p product)."""
        if self._fitted_basis is None:
            self._fitted_basis = (self.train_features @ self.basis if self.form == "primal"
                                  else self.basis * self.spectrum)
        return self._fitted_basis

    @property
    def leverage(self) -> Tensor:
        """B with hat-matrix diagonal ``H_ii(lam) = (B @ (1 / (e + lam)))_i``."""
        if self.form == "primal":
            return self.fitted_basis**2 / self.n
        return self.basis**2 * self.spectrum

    @classmethod
    def from_features(cls, features: Tensor, y: Tensor, form: str = "auto") -> SpectralRidge:
        """Ridge on ``features`` (n, p) and targets ``y`` (n,); ``form``: ``auto`` (primal
        when n >= p), ``primal`` or ``dual``."""
        features, y = check_data("features", features, y)
        n, p = features.shape
        if form == "auto":
            form = "primal" if n >= p else "dual"
        if form == "primal":
            gram = features.T @ features
            return cls.from_normal_equations(gram, features.T @ y, features, y)
        if form != "dual":
            raise ConfigError(f"form must be one of auto, primal, dual (got {form!r})")
        return cls._dual(features @ features.T, y, features)

    @classmethod
    def from_gram(cls, gram: Tensor, y: Tensor) -> SpectralRidge:
        """Kernel ridge regression with the train Gram matrix ``K[i, j] = k(x_i, x_j)``."""
        gram, y = check_data("gram", gram, y)
        if gram.shape[1] != gram.shape[0]:
            raise ConfigError(f"gram must be square (got {tuple(gram.shape)})")
        return cls._dual(gram, y, None)

    @classmethod
    def from_normal_equations(cls, gram: Tensor, rhs: Tensor, features: Tensor,
                              y: Tensor) -> SpectralRidge:
        """Primal form from ``gram = Phi^T Phi`` and ``rhs = Phi^T y`` (unnormalized sums)."""
        n = features.shape[0]
        e, V = torch.linalg.eigh(gram / n)
        return cls(e, V.T @ rhs / n, y, "primal", V, features)

    @classmethod
    def _dual(cls, gram: Tensor, y: Tensor, features: Tensor | None) -> SpectralRidge:
        n = gram.shape[0]
        e, U = torch.linalg.eigh(gram / n)
        return cls(e, U.T @ y, y, "dual", U, features)

    def _scaled(self, lambdas) -> Tensor:
        lam = check_lambdas(lambdas).to(self.spectrum)
        return self.coef[:, None] / (self.spectrum[:, None] + lam)

    def predict(self, lambdas, features: Tensor | None = None,
                cross_gram: Tensor | None = None) -> Tensor:
        """Predictions, shape (m, L): one column per lambda.

        The path's weights are formed first (``p x L`` or ``n x L``), so each evaluation set
        costs ``m p L`` (or ``m n L``) rather than a projection onto the eigenbasis.
        """
        path = self.basis @ self._scaled(lambdas)
        if self.form == "primal":
            if features is None:
                raise ConfigError("a primal ridge fit predicts from features, not a cross Gram")
            return features @ path
        if cross_gram is None:
            if features is None or self.train_features is None:
                raise ConfigError("a kernel ridge fit predicts from cross_gram = "
                                  "k(x_eval, x_train)")
            return features @ (self.train_features.T @ path) / self.n
        return cross_gram @ path / self.n

    def train_predictions(self, lambdas) -> Tensor:
        return self.fitted_basis @ self._scaled(lambdas)

    def train_mse(self, lambdas) -> Tensor:
        r"""Training mean squared error for every lambda (L,), from the spectrum alone.

        Primal: :math:`y^\top y/n - \sum_k c_k^2 (e_k + 2\lambda)/(e_k+\lambda)^2`; dual:
        :math:`\frac1n\sum_k c_k^2\lambda^2/(e_k+\lambda)^2`.
        """
        lam = check_lambdas(lambdas).to(self.spectrum)
        e, c2 = self.spectrum[:, None], self.coef[:, None] ** 2
        if self.form == "dual":
            return (c2 * lam**2 / (e + lam) ** 2).sum(0) / self.n
        yty = (self.y @ self.y) / self.n
        return (yty - (c2 * (e + 2 * lam) / (e + lam) ** 2).sum(0)).clamp_min(0.0)

    def loo_mse(self, lambdas) -> Tensor:
        """Exact leave-one-out mean squared error for every lambda (L,); needs n >= 2 (with one
        sample it is y^2 for every lambda)."""
        if self.n < 2:
            raise ConfigError(f"leave-one-out needs n >= 2 samples: with one, its error is "
                              f"y^2 for every lambda (got n={self.n}); select on held-out data")
        lam = check_lambdas(lambdas).to(self.spectrum)
        inv = 1.0 / (self.spectrum[:, None] + lam)
        resid = self.y[:, None] - self.fitted_basis @ (self.coef[:, None] * inv)
        return ((resid / (1.0 - self.leverage @ inv)) ** 2).mean(0)

    def gcv(self, lambdas) -> Tensor:
        r"""Generalized cross-validation for every lambda (L,): the training error over
        :math:`(1 - \operatorname{tr}H/n)^2`, :math:`\operatorname{tr}H = \sum_k e_k/(e_k+\lambda)`
        (:mod:`rfattn.linalg.kernel_ridge`); it estimates the test error on noisy labels."""
        lam = check_lambdas(lambdas).to(self.spectrum)
        dof = (self.spectrum[:, None] / (self.spectrum[:, None] + lam)).sum(0)
        return self.train_mse(lam) / (1.0 - dof / self.n) ** 2

    def weights(self, lambdas) -> Tensor:
        """Primal weights, shape (p, L) (needs features for a dual fit)."""
        scaled = self._scaled(lambdas)
        if self.form == "primal":
            return self.basis @ scaled
        if self.train_features is None:
            raise ConfigError("a kernel ridge fit has no primal weights")
        return self.train_features.T @ (self.basis @ scaled) / self.n


@dataclass
class RidgePath:
    """Errors of one ridge fit over the lambda path.

    Parameters
    ----------
    n : int
        Training samples of the fit.
    form : str
        ``primal`` (p x p normal equations) or ``dual`` (n x n Gram).
    lambdas : Tensor
        The regularizations, shape (L,).
    mse : dict of str to Tensor
        Mean squared error on each evaluation set (``train``, ``val``, ``test``, ``loo``, ...)
        and the GCV estimate (``gcv``), each of shape (L,).
    """

    n: int
    form: str
    lambdas: Tensor
    mse: dict[str, Tensor]

    def best(self, select_on: str = "val") -> int:
        """Index of the lambda with the smallest error on ``select_on``."""
        return int(torch.argmin(self.mse[select_on]))


def _path(ridge: SpectralRidge, n: int, lam: Tensor, evals, loo: bool,
          cross: bool) -> RidgePath:
    mse = {"train": ridge.train_mse(lam), "gcv": ridge.gcv(lam)}
    for name, (data, target) in evals.items():
        pred = ridge.predict(lam, cross_gram=data[:, :n]) if cross else ridge.predict(lam, data)
        mse[name] = ((pred - target[:, None]) ** 2).mean(0)
    if loo:
        mse["loo"] = ridge.loo_mse(lam)
    return RidgePath(n, ridge.form, lam, {k: v.cpu() for k, v in mse.items()})


def prefix_ridge_paths(features: Tensor, y: Tensor, n_grid: Sequence[int], lambdas,
                       evals: Mapping[str, tuple[Tensor, Tensor]], loo: bool = False,
                       form: str = "auto") -> list[RidgePath]:
    """Ridge paths for the first ``n`` rows of ``features`` for every ``n`` in ``n_grid``.

    The samples are shared: features are computed once at the largest ``n``. Dual-form sizes
    (``n < p``) slice one linear-kernel Gram matrix built at the largest of them; primal-form
    sizes grow the ``p x p`` Gram matrix by the new rows only. Each ``n`` then costs one
    eigendecomposition for all lambdas.

    Parameters
    ----------
    features : Tensor
        Training features, (n_max, p).
    y : Tensor
        Training targets, (n_max,).
    n_grid : sequence of int
        Training sizes, each <= n_max.
    lambdas : sequence of float
        Regularizations (``1/n`` convention).
    evals : mapping of str to (Tensor, Tensor)
        Evaluation sets: features (m, p) and targets (m,).
    loo : bool
        Also record the exact leave-one-out error as ``mse["loo"]``.
    form : str
        ``auto``, ``primal`` or ``dual``.

    Returns
    -------
    list of RidgePath
        One per size of ``n_grid``.
    """
    features, y = check_data("features", features, y)
    n_grid = positive_ints("n_grid", n_grid)
    if n_grid[-1] > features.shape[0]:
        raise ConfigError(f"n_grid has n={n_grid[-1]} but only {features.shape[0]} rows")
    if form not in ("auto", "primal", "dual"):
        raise ConfigError(f"form must be one of auto, primal, dual (got {form!r})")
    lam = check_lambdas(lambdas)
    p = features.shape[1]
    primal = [n for n in n_grid if form == "primal" or (form == "auto" and n >= p)]
    dual = [n for n in n_grid if n not in primal]
    paths = []
    if dual:
        head = features[:dual[-1]]
        cross = {name: (data @ head.T, target) for name, (data, target) in evals.items()}
        paths += prefix_kernel_ridge_paths(head @ head.T, y[:dual[-1]], dual, lam, cross,
                                           loo=loo)
    gram, rhs, done = None, None, 0
    for n in progress(primal, "ridge paths"):
        new = features[done:n]
        gram = new.T @ new if gram is None else gram + new.T @ new
        rhs = new.T @ y[done:n] if rhs is None else rhs + new.T @ y[done:n]
        done = n
        ridge = SpectralRidge.from_normal_equations(gram, rhs, features[:n], y[:n])
        paths.append(_path(ridge, n, lam, evals, loo, cross=False))
    return sorted(paths, key=lambda path: path.n)


def prefix_kernel_ridge_paths(gram: Tensor, y: Tensor, n_grid: Sequence[int], lambdas,
                              evals: Mapping[str, tuple[Tensor, Tensor]],
                              loo: bool = False) -> list[RidgePath]:
    """Kernel ridge paths on the leading ``n x n`` block of ``gram`` for every ``n``.

    Parameters
    ----------
    gram : Tensor
        Kernel Gram matrix of the training samples, (n_max, n_max).
    y : Tensor
        Training targets, (n_max,).
    n_grid : sequence of int
        Training sizes, each <= n_max; size n uses the first n samples.
    lambdas : sequence of float
        Regularizations (``1/n`` convention).
    evals : mapping of str to (Tensor, Tensor)
        Evaluation sets: cross Gram ``k(x_eval, x_train)`` of shape (m, n_max) and targets (m,).
    loo : bool
        Also record the exact leave-one-out error as ``mse["loo"]``.

    Returns
    -------
    list of RidgePath
        One per size of ``n_grid``.
    """
    gram, y = check_data("gram", gram, y)
    n_grid = positive_ints("n_grid", n_grid)
    if n_grid[-1] > gram.shape[0]:
        raise ConfigError(f"n_grid has n={n_grid[-1]} but the Gram matrix has {gram.shape[0]} rows")
    lam = check_lambdas(lambdas)
    return [_path(SpectralRidge.from_gram(gram[:n, :n], y[:n]), n, lam, evals, loo, cross=True)
            for n in progress(n_grid, "kernel ridge paths")]


class RidgeRegressor:
    r"""Ridge regression with scikit-learn verbs: ``fit``, ``predict``, ``score`` (R^2).

    Minimizes :math:`\frac1n\|y - Xw\|^2 + \lambda\|w\|^2` (scikit-learn ``alpha = n * lam``).

    Parameters
    ----------
    lam : float
        The regularization :math:`\lambda \ge 0`.
    form : str
        ``auto`` (primal when n >= p), ``primal`` or ``dual``.
    """

    def __init__(self, lam: float = 1e-3, form: str = "auto"):
        self.lam, self.form = float(check_lambdas([lam])[0]), form

    def fit(self, features, y) -> RidgeRegressor:
        """Fit on ``features`` (n, p) and ``y`` (n,), tensors or numpy arrays."""
        ridge = SpectralRidge.from_features(features, y, form=self.form)
        self.coef_ = ridge.weights([self.lam])[:, 0]
        return self

    def predict(self, features) -> Tensor:
        if not hasattr(self, "coef_"):
            raise ConfigError("RidgeRegressor is not fitted: call fit(features, y) first")
        features = finite_array("features", features)
        if features.ndim != 2 or features.shape[1] != self.coef_.shape[0]:
            raise ConfigError(f"features must be (m, {self.coef_.shape[0]}) "
                              f"(got {tuple(features.shape)})")
        return features.to(self.coef_) @ self.coef_

    def score(self, features, y) -> float:
        """The coefficient of determination R^2 on (features, y)."""
        features, y = check_data("features", features, y)
        resid = ((self.predict(features) - y) ** 2).sum()
        return float(1.0 - resid / ((y - y.mean()) ** 2).sum())
