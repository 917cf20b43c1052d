r"""One example's step Jacobian :math:`J_t = \partial s_t / \partial s_{t-1}` as a scipy operator.

Legend: D = input size, N = hidden size, S = state size, K = vectors in one block product.

:func:`step_operator` hands :math:`J_t` at one point :math:`(x_t, s_{t-1})` to any eigensolver that
takes a :class:`scipy.sparse.linalg.LinearOperator` (``svds``, ``eigs``, ``lsqr``, PRIMME, ...)
without forming it: ``J @ v`` is one JVP and ``J.T @ u`` one VJP of the cell's step
(:func:`~spectrumkit.jacobians.jvp_step`, :func:`~spectrumkit.jacobians.vjp_step`); a block of K
vectors is one batched product. The index order is NOTE [Jacobian convention] of ``jacobians.py``.

NOTE [Operator dtypes]
The products are computed in the params' dtype (float32 params give float32 products, rounded
accordingly) and handed back as float64 numpy arrays, the dtype the operator declares: scipy's
solvers then run their own arithmetic in float64 whatever the network's precision. For results
accurate to float64, pass float64 params, x and s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from ._steps import check_step_args, jvp_step_fn, vjp_step_fn
from .cells import Cell, check_params, get
from .errors import check_float_tensor, fail

__all__ = ["step_operator"]


def _check_point(fn: str, x: object, s: object) -> tuple[torch.Tensor, torch.Tensor]:
    check_float_tensor(fn, "x", x)
    check_float_tensor(fn, "s", s)
    assert isinstance(x, torch.Tensor) and isinstance(s, torch.Tensor)
    if x.dim() != 1:
        raise fail(fn, "x of shape (D,) (one example)", f"shape {tuple(x.shape)}")
    if s.dim() != 1:
        raise fail(fn, "s of shape (S,) (one example)", f"shape {tuple(s.shape)}")
    return x, s


def step_operator(cell: str | Cell, params: Mapping[str, torch.Tensor], x: torch.Tensor,
                  s: torch.Tensor) -> LinearOperator:
    r"""The step Jacobian :math:`J = \partial\,\mathrm{step}(\theta, x, s) / \partial s` of one
    example as a :class:`scipy.sparse.linalg.LinearOperator` of shape (S, S), never formed.

    .. math::  J v = \frac{d}{d\epsilon}\,\mathrm{step}(\theta, x, s + \epsilon v)\Big|_{\epsilon=0}
               \ \text{(one JVP)}, \qquad J^\top u = \nabla_s \langle u, \mathrm{step}(\theta, x,
               s)\rangle \ \text{(one VJP)}.

    For step t of a sequence pass ``x = xs[t-1, b]`` and ``s = states[t-1, b]`` (``states`` from
    :func:`~spectrumkit.unroll.unroll`), as in NOTE [Jacobian convention] of ``jacobians.py``.

    Args:
        cell: a built-in name or a :class:`~spectrumkit.cells.Cell` (any cell that supports
            forward- and reverse-mode AD).
        params: the cell's parameters; their dtype is the dtype of the products
            (NOTE [Operator dtypes]). They are detached: the operator is a constant matrix.
        x: (D,) the input at the step.
        s: (S,) the previous state.

    Returns:
        A ``LinearOperator`` with ``shape == (S, S)`` and ``dtype == float64`` whose ``matvec`` /
        ``matmat`` apply J and whose ``rmatvec`` / ``rmatmat`` apply Jᵀ to float64 numpy arrays
        ((S,) or (S, K)); its ``.T``/``.H`` are Jᵀ. Raises :class:`SpectrumkitError` for a bad
        cell, params, or x/s of the wrong shape or dtype.

    >>> import numpy as np, torch
    >>> from scipy.sparse.linalg import svds
    >>> from spectrumkit.init import init_params
    >>> p = init_params("rnn", 2, 6, "normal:0.5", seed=0, dtype=torch.float64)
    >>> op = step_operator("rnn", p, torch.zeros(2, dtype=torch.float64),
    ...                    torch.zeros(6, dtype=torch.float64))
    >>> top = svds(op, k=2, return_singular_vectors=False, random_state=0)
    >>> dense = np.linalg.svd(p["weight_hh"].numpy(), compute_uv=False)[:2]   # tanh'(0) = 1
    >>> bool(np.allclose(np.sort(top)[::-1], dense, rtol=1e-10, atol=0))
    True
    """
    fn = "step_operator"
    cell = get(cell)
    x, s = _check_point(fn, x, s)
    check_step_args(fn, cell, params, x.unsqueeze(0), s.unsqueeze(0))
    dtype = next(iter(params.values())).dtype
    if s.dtype != dtype:
        raise fail(fn, f"s of the params' dtype {dtype}", s.dtype)
    _, N = check_params(fn, cell, params)
    S = cell.state_size(N)
    if s.shape[0] != S:
        raise fail(fn, f"s of shape (S={S},) for {cell.name} with N={N}", f"shape {tuple(s.shape)}")
    p = {k: v.detach() for k, v in params.items()}
    return _StepOperator(cell, p, x.detach(), s.detach(), S)


class _StepOperator(LinearOperator):
    """J (S, S) of one example through batched JVPs (``J @ V``) and VJPs (``J.T @ U``)."""

    def __init__(self, cell: Cell, params: dict[str, torch.Tensor], x: torch.Tensor,
                 s: torch.Tensor, S: int) -> None:
        super().__init__(dtype=np.dtype(np.float64), shape=(S, S))
        self._cell, self._params, self._x, self._s = cell, params, x, s

    def _apply(self, product: Callable[..., torch.Tensor], V: np.ndarray) -> np.ndarray:
        # V: (S, K) -> (S, K), one batched product over K copies of the point
        V = np.asarray(V)
        if np.iscomplexobj(V):  # J is real: act on the real and imaginary parts separately
            return self._apply(product, V.real) + 1j * self._apply(product, V.imag)
        K = V.shape[1]
        v = torch.as_tensor(np.ascontiguousarray(V.T), dtype=self._s.dtype, device=self._s.device)
        x = self._x.expand(K, -1).contiguous()
        s = self._s.expand(K, -1).contiguous()  # a tangent's primal must own its memory
        out = product(self._cell, self._params, x, s, v)
        return out.detach().cpu().to(torch.float64).numpy().T

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        return self._apply(jvp_step_fn, np.reshape(v, (-1, 1)))[:, 0]

    def _rmatvec(self, u: np.ndarray) -> np.ndarray:
        return self._apply(vjp_step_fn, np.reshape(u, (-1, 1)))[:, 0]

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        return self._apply(jvp_step_fn, V)

    def _rmatmat(self, U: np.ndarray) -> np.ndarray:
        return self._apply(vjp_step_fn, U)
