r"""Singular values of per-step Jacobians, their summaries, the χ estimators, Lyapunov exponents.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = selected steps,
k = exponents / probes.

NOTE [χ estimators]
The paper's χ is a mean squared singular value of the per-step Jacobian. Four estimators exist and
they are NOT equal in general (each is divided by S, the paper's 1/N with S = N for rnn and gru):

* ``ones``       ‖J 1‖² / S — the paper's Algorithm 1 (line 9): one JVP with an all-ones tangent.
                 ‖J 1‖² = Σ_i (Σ_j J_ij)² = ‖J‖_F² + Σ_i Σ_{j≠k} J_ij J_ik: the squared *row sums*,
                 so products of entries within a row count. It equals ``frobenius`` when those
                 cross terms vanish (e.g. J diagonal) and can be far from it otherwise (it is 0
                 for a J whose rows sum to zero).
* ``transpose``  ‖Jᵀ 1‖² / S — what the authors' code differentiates: squared *column* sums;
                 equals ``ones`` when J is symmetric.
* ``frobenius``  ‖J‖_F² / S = Σσ² / S = mean σ² — exact.
* ``hutchinson`` mean over k Rademacher probes v of ‖J v‖² / S — unbiased for ``frobenius``
                 (E[v vᵀ] = I), with variance 2(‖JᵀJ‖_F² − Σ_i (JᵀJ)_ii²) / (k S²) (Hutchinson 1990;
                 Avron & Toledo 2011, J. ACM 58(2)).

Eq. 3 of the paper writes ``ones`` as if it were ``frobenius``. With random weights W of scale
1/√N the cross terms have mean zero, so ``ones`` and ``frobenius`` agree in expectation over W, but
for one network they differ by O(1) relative amounts (the tests show this on a random GRU); they
agree exactly when every row of J has at most one non-zero entry, e.g. J diagonal.

NOTE [Spectrum summary]
:func:`spectrum_summary` pools singular values over all leading dimensions for the order
statistics (mean, median, min, max σ, the fraction below ``near_zero``) and for χ_F = mean σ²
(= mean over matrices of ‖J‖_F² / S). The two per-matrix quantities are aggregated over matrices:
``condition`` is the *median* over matrices of κ = σ_max / σ_min (inf where σ_min = 0; the median is
robust to the few near-singular matrices that make the mean meaningless), and
``effective_rank`` is the *mean* over matrices of the effective rank of Roy & Vetterli (2007,
"The effective rank: a measure of effective dimensionality", EUSIPCO): exp(H(p)) with
p_i = σ_i / Σ_j σ_j and H the Shannon entropy (natural log, 0 log 0 = 0). It lies in [1, S] for a
non-zero matrix; we define it as 0 for the zero matrix. Summaries are computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.func import jacrev, vmap

from ._unroll import batched_step, check_sequence
from .cells import Cell, Params, get
from .choices import ESTIMATORS, Estimator
from .closed_form import _graph_free, _iter_closed_form_steps
from .errors import check_choice, check_float_tensor, check_positive_int, fail
from .init import make_generator
from .jacobians import (
    _CLOSED_FORMS,
    Block,
    Method,
    _closed_form,
    _iter_chunks,
    _jvp_step,
    _plan,
    _vjp_step,
)
from .jacobians import METHODS as JACOBIAN_METHODS

__all__ = [
    "CHI_ESTIMATORS",
    "SUMMARY_COLUMNS",
    "Histogram",
    "Spectrum",
    "chi",
    "chi_step",
    "effective_rank",
    "histogram",
    "lyapunov_exponents",
    "reference_singular_values",
    "singular_values",
    "spectrum",
    "spectrum_summary",
]

#: The χ estimators (NOTE [χ estimators]); ``choices.ESTIMATORS`` under its public name here.
CHI_ESTIMATORS = ESTIMATORS

#: Columns of :func:`spectrum_summary` and of the per-step table of :func:`spectrum`.
SUMMARY_COLUMNS = ("mean", "median", "min", "max", "frac_near_zero", "chi_F", "condition",
                   "effective_rank")


# --------------------------------------------------------------------------------------------------
# Singular values and their summaries
# --------------------------------------------------------------------------------------------------


def _check_matrices(fn: str, J: torch.Tensor) -> None:
    check_float_tensor(fn, "J", J)
    if J.dim() < 2 or J.shape[-1] == 0 or J.shape[-2] == 0:
        raise fail(fn, "J of shape (..., M, K) with M, K >= 1", f"shape {tuple(J.shape)}")


def singular_values(J: torch.Tensor) -> torch.Tensor:
    r"""Singular values :math:`\sigma_1 \ge \dots \ge \sigma_{\min(M,K)} \ge 0` of every matrix.

    Args:
        J: (..., M, K), e.g. (U, B, S, S) from :func:`~spectrumkit.jacobians.step_jacobians`.

    Returns:
        (..., min(M, K)), descending, in J's dtype and on its device (``torch.linalg.svdvals``).
        Σ_i σ_i² = ‖J‖_F².

    >>> import torch
    >>> singular_values(torch.tensor([[3.0, 0.0], [0.0, -4.0]])).tolist()
    [4.0, 3.0]
    """
    _check_matrices("singular_values", J)
    return torch.linalg.svdvals(J)


def reference_singular_values(J: torch.Tensor) -> torch.Tensor:
    """The float64 reference: ``numpy.linalg.svd(J, compute_uv=False)`` on the CPU.

    Args:
        J: (..., M, K). Returns (..., min(M, K)) float64 on the CPU, descending.
    """
    _check_matrices("reference_singular_values", J)
    a = J.detach().cpu().to(torch.float64).numpy()
    return torch.from_numpy(np.linalg.svd(a, compute_uv=False).copy())


def _check_sv(fn: str, sv: torch.Tensor) -> np.ndarray:
    check_float_tensor(fn, "sv", sv)
    if sv.dim() < 1 or sv.numel() == 0:
        raise fail(fn, "sv of shape (..., S) with at least one value", f"shape {tuple(sv.shape)}")
    a = sv.detach().cpu().to(torch.float64).numpy()
    if (a < 0).any():
        raise fail(fn, "sv >= 0 (singular values)", f"{int((a < 0).sum())} negative entries")
    return a


#: Entries per block of the effective rank's temporaries (2 MiB of float64 each): the pooled
#: summary of a long spectrum would otherwise hold several float64 copies of every σ at once.
_RANK_BLOCK = 2**18


def _effective_rank_rows(m: np.ndarray) -> np.ndarray:
    total = m.sum(-1, keepdims=True)
    p = np.divide(m, total, out=np.zeros_like(m), where=total > 0)
    h = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)
    return np.where(total[..., 0] > 0, np.exp(h), 0.0)


def _effective_rank(a: np.ndarray) -> np.ndarray:
    """(..., S) -> (...): row by row, in blocks of about :data:`_RANK_BLOCK` entries."""
    m = a.reshape(-1, a.shape[-1])
    rows = max(1, _RANK_BLOCK // m.shape[-1])
    out = np.concatenate([_effective_rank_rows(m[i: i + rows])
                          for i in range(0, m.shape[0], rows)])
    return out.reshape(a.shape[:-1])


def effective_rank(sv: torch.Tensor) -> torch.Tensor:
    r"""Effective rank of Roy & Vetterli (2007): :math:`\exp(-\sum_i p_i \log p_i)`,
    :math:`p_i = \sigma_i / \sum_j \sigma_j` (NOTE [Spectrum summary]).

    Args:
        sv: (..., S) singular values of each matrix. Returns (...,) float64; 0 for a zero matrix.

    >>> import torch
    >>> r = effective_rank(torch.tensor([[2.0, 2.0, 2.0], [1.0, 0.0, 0.0]]))
    >>> [round(v, 12) for v in r.tolist()]
    [3.0, 1.0]
    """
    return torch.from_numpy(_effective_rank(_check_sv("effective_rank", sv)))


def _summary(a: np.ndarray, near_zero: float) -> dict[str, float]:
    """Trusted core of :func:`spectrum_summary`: a (..., S) float64 array."""
    m = a.reshape(-1, a.shape[-1])
    hi, lo = m.max(-1), m.min(-1)
    kappa = np.divide(hi, lo, out=np.full_like(hi, np.inf), where=lo > 0)
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "min": float(a.min()),
        "max": float(a.max()),
        "frac_near_zero": float((a < near_zero).mean()),
        "chi_F": float((a * a).mean()),
        "condition": float(np.median(kappa)),
        "effective_rank": float(_effective_rank(m).mean()),
    }


def _check_near_zero(fn: str, near_zero: float) -> float:
    ok = isinstance(near_zero, (int, float)) and not isinstance(near_zero, bool)
    if not ok or not math.isfinite(near_zero) or near_zero <= 0:
        raise fail(fn, "near_zero to be a finite number > 0", repr(near_zero))
    return float(near_zero)


def spectrum_summary(sv: torch.Tensor, near_zero: float = 1e-2) -> dict[str, float]:
    r"""Summary statistics of singular values (NOTE [Spectrum summary]).

    Args:
        sv: (..., S): the singular values of one or many matrices, one matrix per last-axis row
            (e.g. (B, S) for a step, (U, B, S) for several).
        near_zero: threshold for ``frac_near_zero``.

    Returns:
        ``{column: float}`` with the keys :data:`SUMMARY_COLUMNS`: mean, median, min and max σ,
        ``frac_near_zero`` = fraction of σ < near_zero, ``chi_F`` = mean σ² (the Frobenius χ of
        NOTE [χ estimators]), ``condition`` = median over matrices of σ_max/σ_min and
        ``effective_rank`` = mean over matrices of the Roy–Vetterli effective rank.

    >>> import torch
    >>> s = spectrum_summary(torch.tensor([[4.0, 1.0], [2.0, 0.0]]))
    >>> s["mean"], s["chi_F"], s["frac_near_zero"], s["condition"]
    (1.75, 5.25, 0.25, inf)
    """
    fn = "spectrum_summary"
    near_zero = _check_near_zero(fn, near_zero)
    return _summary(_check_sv(fn, sv), near_zero)


class Histogram(NamedTuple):
    """Histogram counts of singular values.

    Attributes:
        counts: (bins,) int64 counts; bins are half-open [e_i, e_{i+1}) except the last, closed.
        edges: (bins+1,) float64 bin edges.
        outside: number of values outside [edges[0], edges[-1]] (only with an explicit range).
    """

    counts: np.ndarray
    edges: np.ndarray
    outside: int


def _check_bins(fn: str, bins: int | Sequence[float], value_range: tuple[float, float] | None
                ) -> None:
    if isinstance(bins, int) and not isinstance(bins, bool):
        check_positive_int(fn, "bins", bins)
    else:
        try:
            e = np.asarray(bins, dtype=np.float64)
        except (TypeError, ValueError):
            raise fail(fn, "bins a positive int or increasing edges", repr(bins)) from None
        if e.ndim != 1 or e.size < 2 or not np.isfinite(e).all() or not (np.diff(e) > 0).all():
            raise fail(fn, "bins a positive int or at least two finite increasing edges",
                       repr(bins))
        if value_range is not None:
            raise fail(fn, "value_range only together with an int number of bins",
                       f"edges and value_range={value_range!r}")
    if value_range is not None:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise fail(fn, "value_range a pair (lo, hi)", repr(value_range)) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise fail(fn, "value_range (lo, hi) finite with lo < hi", repr(value_range))


def _histogram(a: np.ndarray, bins: int | Sequence[float],
               value_range: tuple[float, float] | None) -> Histogram:
    """Trusted core of :func:`histogram` on a float64 array."""
    a = a.ravel()
    if isinstance(bins, int):
        lo, hi = value_range if value_range is not None else (0.0, float(a.max()) or 1.0)
        edges = np.linspace(float(lo), float(hi), bins + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    counts, edges = np.histogram(a, bins=edges)
    outside = int(((a < edges[0]) | (a > edges[-1])).sum())
    return Histogram(counts.astype(np.int64), edges, outside)


def histogram(sv: torch.Tensor, bins: int | Sequence[float] = 50,
              value_range: tuple[float, float] | None = None) -> Histogram:
    """Histogram of singular values, pooled over every dimension.

    Args:
        sv: (...,) singular values.
        bins: number of equal bins, or explicit increasing edges.
        value_range: (lo, hi) for int ``bins``; default (0, max σ) (or (0, 1) if every σ is 0).
            Values outside an explicit range are not binned: they are counted in ``outside``.

    >>> import torch
    >>> h = histogram(torch.tensor([0.0, 0.5, 1.0, 2.0]), bins=2)
    >>> h.counts.tolist(), h.edges.tolist(), h.outside
    ([2, 2], [0.0, 1.0, 2.0], 0)
    """
    fn = "histogram"
    _check_bins(fn, bins, value_range)
    return _histogram(_check_sv(fn, sv), bins, value_range)


@dataclass(frozen=True)
class Spectrum:
    """Result of :func:`spectrum`.

    Attributes:
        table: one row per step (index ``step``, 1-based) with :data:`SUMMARY_COLUMNS`, each
            summarizing the B matrices of that step.
        pooled: :func:`spectrum_summary` over every selected step and example.
        histogram: the pooled :class:`Histogram`.
        singular_values: (U, B, S) (or (U, B, N) for ``block="hh"``) on the CPU, descending;
            with ``method="lanczos"`` only the top-k Ritz values (U, B, k).
        matrix_free: None for the dense methods; with ``method="lanczos"`` a
            :class:`~spectrumkit.matfree.MatrixFree` (the SLQ density, the extreme singular values
            with their residuals and convergence flags, the options used).
    """

    table: pd.DataFrame
    pooled: dict[str, float]
    histogram: Histogram
    singular_values: torch.Tensor
    matrix_free: Any = None


# NOTE [Spectra one step at a time]
# The closed form computes its terms and products one step at a time anyway (NOTE [Chunk
# invariance]), so nothing is gained by holding a chunk of Jacobians before their SVDs: spectrum()
# writes each step's (B, S, S) into one reused buffer (NOTE [One pass over J]) and takes its
# singular values at once. The Jacobians' memory is then one step's, B·S² numbers, not
# chunk_size·B·S² (at T = 784, N = 100, B = 64, chunk_size 64, float32: 2.6 MB instead of 164 MB),
# and the fresh pages of a new chunk are paid once instead of once per chunk. The singular values
# are the same bit for bit: the same matrices, the same svdvals calls.


def spectrum(cell: str | Cell, params: Params, xs: torch.Tensor, *,
             states: torch.Tensor | None = None, steps: int | Sequence[int] | None = None,
             method: Method | Literal["lanczos"] = "auto", chunk_size: int | None = None,
             block: Block = "full", bins: int | Sequence[float] = 50,
             value_range: tuple[float, float] | None = None, near_zero: float = 1e-2,
             lanczos: Any = None, generator: torch.Generator | None = None,
             seed: int | None = None) -> Spectrum:
    r"""Streamed singular-value spectra of the per-step Jacobians of a sequence.

    ``method="lanczos"`` never forms a Jacobian: it returns the same table, pooled summary and
    histogram (on the same bins) from stochastic Lanczos quadrature, with the options ``lanczos``
    (:class:`~spectrumkit.matfree.LanczosOptions` or a dict) and exactly one of ``generator`` /
    ``seed`` for the probes; see :func:`~spectrumkit.matfree.lanczos_spectrum`. The other methods
    (dense) take neither.

    With the closed form the Jacobians are formed one step at a time into one reused (B, S, S)
    buffer and reduced to their singular values (O(B·S) per step) before the next step, whatever
    ``chunk_size`` (NOTE [Spectra one step at a time]). The autodiff engines' Jacobians come chunk
    by chunk from :func:`~spectrumkit.jacobians.iter_step_jacobians` (``steps``, ``method``,
    ``chunk_size``, ``block`` as there; chunk_size None fits a chunk in 256 MiB), each chunk reduced
    before the next is computed, so at most one chunk is alive. The SVD runs one step at a time, so
    the copy ``svdvals`` makes is one step's matrices. The result does not depend on
    ``chunk_size``.

    Args:
        cell, params, xs (T, B, D), states (T+1, B, S): as in
            :func:`~spectrumkit.jacobians.step_jacobians`.
        bins, value_range: of the pooled histogram (see :func:`histogram`).
        near_zero: threshold of ``frac_near_zero`` (see :func:`spectrum_summary`).

    Returns:
        :class:`Spectrum` with the per-step table, the pooled summary and histogram and the
        singular values (U, B, S).

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("gru", 2, 4, "normal:0.5", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(6, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> sp = spectrum("gru", p, xs, steps=4, chunk_size=3, bins=8)
    >>> list(sp.table.index), int(sp.histogram.counts.sum())
    ([3, 4, 5, 6], 48)
    """
    fn = "spectrum"
    check_choice(fn, "method", method, (*JACOBIAN_METHODS, "lanczos"))
    if method == "lanczos":
        if chunk_size is not None:
            raise fail(fn, "chunk_size only with a dense method (lanczos sizes its own chunks)",
                       chunk_size)
        from .matfree import lanczos_spectrum

        return lanczos_spectrum(cell, params, xs, states=states, steps=steps, block=block,
                                lanczos=lanczos, generator=generator, seed=seed, bins=bins,
                                value_range=value_range, near_zero=near_zero)
    given = [n for n, v in (("lanczos", lanczos), ("generator", generator), ("seed", seed))
             if v is not None]
    if given:
        raise fail(fn, f"{', '.join(given)} only with method='lanczos'", f"method={method!r}")
    near_zero = _check_near_zero(fn, near_zero)
    _check_bins(fn, bins, value_range)
    plan = _plan(fn, cell, params, xs, states, steps, method, chunk_size, block,
                 default_chunk="budget")
    B = xs.shape[1]
    with torch.no_grad():
        sv = torch.empty(len(plan.steps), B, plan.size, dtype=xs.dtype)
        if plan.method == "closed_form" and _graph_free(params, xs, plan.states):
            # one step at a time in one reused buffer (NOTE [Spectra one step at a time])
            for k, J in enumerate(_iter_closed_form_steps(plan.cell, params, xs, plan.states,
                                                          plan.steps, plan.block, plan.size)):
                sv[k] = torch.linalg.svdvals(J).cpu()
        else:
            k = 0
            for chunk in _iter_chunks(plan, params, xs):
                for J in chunk.jacobians:                   # one step (B, S, S) at a time
                    sv[k] = torch.linalg.svdvals(J).cpu()
                    k += 1
                del chunk, J
    steps = plan.steps
    del plan                            # the states, when computed here, are no longer needed
    a = sv.to(torch.float64).numpy()
    rows = [_summary(a[i], near_zero) for i in range(len(steps))]
    table = pd.DataFrame(rows, index=pd.Index(steps, name="step"), columns=list(SUMMARY_COLUMNS))
    return Spectrum(table, _summary(a, near_zero), _histogram(a, bins, value_range), sv)


# --------------------------------------------------------------------------------------------------
# χ estimators
# --------------------------------------------------------------------------------------------------


# NOTE [J 1 in closed form]
# For a built-in cell whose Jacobian is "elementwise × shared matrix" (NOTE [Closed-form engine],
# every cell but gru_cho), J_b = Σ_g diag(β_{b,g}) M_g + diag(α_b), so
# (J_b 1)_{o,n} = Σ_g β_{b,o,g,n} (M_g 1)_n + Σ_p α_{b,o,p,n}: the row sums of the shared matrices
# replace the (B, S) × (S, G·N) product that a forward-mode J v with v = 1 costs (and its twin in
# the backward pass). Same J 1 as ``jvp_step`` up to the order of the float sums.
def _ones_closed_form(form: Any, params: Params, x: torch.Tensor, s: torch.Tensor
                      ) -> torch.Tensor:
    """Trusted: J 1 of every example, (B, S), for a closed form with ``reset is None``."""
    beta, alpha, _ = form.terms(params, x, s)                   # (B, O, G, N), (B, O, O, N)
    m = form.mats(params, beta.shape[-1]).sum(-1)               # (G, N): M_g 1
    j1 = (beta * m).sum(-2)                                     # (B, O, N)
    if alpha is not None:
        j1 = j1 + alpha.sum(-2)
    return j1.reshape(s.shape)


def chi_step(cell: Cell, params: Params, x: torch.Tensor, s: torch.Tensor, estimator: str = "ones",
             *, probes: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-example χ of one step, differentiable with respect to ``params`` and ``s``.

    Args:
        cell: a :class:`~spectrumkit.cells.Cell` (trusted: callers validate).
        x: (B, D) inputs; s: (B, S) previous states.
        estimator: one of :data:`CHI_ESTIMATORS` (see NOTE [χ estimators]).
        probes: number of Rademacher probes for ``hutchinson``.
        generator: required for ``hutchinson``; probes are drawn on the CPU and moved to s's device.

    Returns:
        (B,) χ per example, already divided by S. ``frobenius`` uses the closed form for the
        built-in cells (NOTE [Closed-form engine]) and ``vmap(jacrev)`` otherwise.
    """
    if estimator not in CHI_ESTIMATORS:
        raise fail("chi_step", f"estimator one of {', '.join(CHI_ESTIMATORS)}", repr(estimator))
    S = s.shape[-1]
    if estimator == "ones":
        form = _CLOSED_FORMS.get(cell)
        if form is not None and form.reset is None:
            return _ones_closed_form(form, params, x, s).pow(2).sum(-1) / S
        return _jvp_step(cell, params, x, s, torch.ones_like(s)).pow(2).sum(-1) / S
    if estimator == "transpose":
        return _vjp_step(cell, params, x, s, torch.ones_like(s)).pow(2).sum(-1) / S
    if estimator == "frobenius":
        if cell in _CLOSED_FORMS:
            J = _closed_form(cell, params, x, s, "full")
        else:
            J = vmap(jacrev(cell.step, argnums=2), in_dims=(None, 0, 0))(params, x, s)
        return J.pow(2).sum((-1, -2)) / S
    check_positive_int("chi_step", "probes", probes)
    if generator is None:
        raise fail("chi_step", "a generator for the hutchinson estimator", None)
    v = torch.randint(0, 2, (probes, *s.shape), generator=generator).to(s) * 2 - 1
    jv = vmap(lambda vi: _jvp_step(cell, params, x, s, vi))(v)
    return jv.pow(2).sum(-1).mean(0) / S


def chi(cell: str | Cell, params: Params, xs: torch.Tensor, *,
        states: torch.Tensor | None = None, steps: int | Sequence[int] | None = None,
        estimator: Estimator = "ones", probes: int = 1,
        generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    r"""χ of every selected step and example (NOTE [χ estimators]), divided by S.

    .. math::  \chi_t^{(b)} \in \Big\{\tfrac{\|J_t 1\|^2}{S},\ \tfrac{\|J_t^\top 1\|^2}{S},\
               \tfrac{\|J_t\|_F^2}{S},\ \tfrac1k\sum_{j=1}^k \tfrac{\|J_t v_j\|^2}{S}\Big\}

    Args:
        cell, params, xs (T, B, D), states (T+1, B, S), steps: as in
            :func:`~spectrumkit.jacobians.step_jacobians`. When ``states`` is None they are
            computed without gradient, so χ is differentiable with respect to ``params`` at fixed
            states; pass states that carry gradient to differentiate through time.
        estimator: ``ones``, ``transpose``, ``frobenius`` or ``hutchinson``.
        probes: Rademacher probes per step for ``hutchinson`` (k).
        generator, seed: exactly one is required for ``hutchinson`` (probes are drawn step by
            step in ascending order); ignored by the deterministic estimators.

    Returns:
        (U, B) with U = len(steps).

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("rnn", 2, 3, "normal:0.5", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(4, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> from spectrumkit.jacobians import step_jacobians
    >>> J = step_jacobians("rnn", p, xs)
    >>> bool(torch.allclose(chi("rnn", p, xs, estimator="frobenius"), J.pow(2).sum((-1, -2)) / 3))
    True
    """
    fn = "chi"
    cell = get(cell)
    check_choice(fn, "estimator", estimator, CHI_ESTIMATORS)
    check_positive_int(fn, "probes", probes)
    g = make_generator(generator, seed, fn) if estimator == "hutchinson" else None
    plan = _plan(fn, cell, params, xs, states, steps, "auto", 1, "full", default_chunk="all")
    return torch.stack([chi_step(cell, params, xs[t - 1], plan.states[t - 1], estimator,
                                 probes=probes, generator=g) for t in plan.steps])


# --------------------------------------------------------------------------------------------------
# Lyapunov exponents
# --------------------------------------------------------------------------------------------------


def lyapunov_exponents(cell: str | Cell, params: Params, xs: torch.Tensor, *, k: int | None = None,
                       reorth_every: int = 1, warmup: int = 0, s0: torch.Tensor | None = None,
                       generator: torch.Generator | None = None, seed: int | None = None
                       ) -> torch.Tensor:
    r"""Finite-time Lyapunov exponents of the trajectories driven by ``xs`` (QR / Benettin method).

    With an orthonormal :math:`Q_0` (S, k), for t = 1..T: :math:`Q \leftarrow J_t Q` (k JVPs, so
    J is never formed and any cell works through autodiff); every ``reorth_every`` steps (and at
    step T) :math:`Q R = Q` by QR with the signs fixed so that :math:`\mathrm{diag}\,R \ge 0`. After
    ``warmup`` steps the exponents are

    .. math::  \lambda_i = \frac{1}{T - \mathrm{warmup}} \sum \log R_{ii}
               \quad\text{(natural log per step)},

    sorted largest first (Benettin et al. 1980, Meccanica 15; Eckmann & Ruelle 1985, Rev. Mod.
    Phys. 57). For a linear cell :math:`s' = A s` with A normal they are :math:`\log|\lambda_i(A)|`
    (exactly when A is diagonal or a multiple of an orthogonal matrix). A zero singular direction
    gives −inf. Not differentiable (computed under ``no_grad``).

    Args:
        xs: (T, B, D). s0: (S,) or (B, S) initial state, zero by default.
        k: number of exponents, 1..S (default S).
        reorth_every: steps between QR re-orthonormalizations (1 is the most stable).
        warmup: steps run (and re-orthonormalized at the end) before accumulating, 0..T-1.
        generator, seed: with ``k < S`` exactly one is required: the start :math:`Q_0` is then a
            random orthonormal (S, k) frame (an identity slice could miss the leading directions).
            With ``k = S`` and neither given, :math:`Q_0 = I`.

    Returns:
        (B, k) exponents per trajectory, largest first, in the params' dtype.

    >>> import torch
    >>> from spectrumkit.cells import make_cell
    >>> lin = make_cell("lin", lambda p, x, s: p["A"] @ s + p["B"] @ x,
    ...                 lambda D, N: {"A": (N, N), "B": (N, D)})
    >>> p = {"A": torch.diag(torch.tensor([0.5, 2.0], dtype=torch.float64)),
    ...      "B": torch.zeros(2, 1, dtype=torch.float64)}
    >>> lyapunov_exponents(lin, p, torch.zeros(10, 1, 1, dtype=torch.float64)).exp().tolist()
    [[2.0, 0.5]]
    """
    fn = "lyapunov_exponents"
    cell = get(cell)
    _, N, s = check_sequence(fn, cell, params, xs, s0)
    T, B = xs.shape[:2]
    S = cell.state_size(N)
    k = S if k is None else k
    check_positive_int(fn, "k", k)
    if k > S:
        raise fail(fn, f"k in 1..S={S}", k)
    check_positive_int(fn, "reorth_every", reorth_every)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < T:
        raise fail(fn, f"warmup an int in 0..T-1={T - 1}", repr(warmup))
    if k < S or generator is not None or seed is not None:
        if k < S and generator is None and seed is None:
            raise fail(fn, f"generator= or seed= for a random start frame when k={k} < S={S}",
                       "neither")
        g = make_generator(generator, seed, fn)
        q0 = torch.linalg.qr(torch.randn(S, k, generator=g, dtype=torch.float64))[0]
        Q = q0.to(xs).expand(B, S, k).clone()
    else:
        Q = torch.eye(S, dtype=xs.dtype, device=xs.device).expand(B, S, S).clone()
    step = batched_step(cell)
    total = torch.zeros(B, k, dtype=torch.float64, device=xs.device)
    with torch.no_grad():
        for t in range(1, T + 1):
            x = xs[t - 1]
            Q = vmap(lambda v: _jvp_step(cell, params, x, s, v), in_dims=2, out_dims=2)(Q)
            s = step(params, x, s)
            if t == T or (t - warmup) % reorth_every == 0:     # includes t == warmup
                Q, R = torch.linalg.qr(Q)
                d = torch.diagonal(R, dim1=-2, dim2=-1)
                sign = torch.where(d < 0, -1.0, 1.0).to(Q)
                Q = Q * sign[:, None, :]
                if t > warmup:
                    total += torch.log(d.abs().to(torch.float64))
    out = (total / (T - warmup)).to(xs.dtype)
    return out.sort(dim=-1, descending=True).values
