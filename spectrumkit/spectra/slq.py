r"""The singular-value density of the per-step Jacobians without forming them: stochastic Lanczos
quadrature (SLQ), and the matrix-free spectrum :func:`lanczos_spectrum`.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, U = selected steps,
P = probes per example, m = Lanczos steps, k = extreme singular values, R = rows (B·P).

NOTE [SLQ density]
The singular-value density of one J is μ = (1/S) Σ_i δ(σ_i). For a probe v with E[v vᵀ] = I/S
(uniform on the unit sphere; the P probes of one example are drawn orthonormal, see ``probes`` in
``_matfree.py``),
E[vᵀ f(JᵀJ) v] = (1/S) tr f(JᵀJ) = ∫ f(σ²) dμ(σ) (Hutchinson 1990), and m Lanczos steps from v
give the Gauss quadrature
vᵀ f(JᵀJ) v ≈ Σ_j w_j f(θ_j²) with nodes θ_j = σ_j(B_m) and weights w_j = y_j[1]², Σ_j w_j = 1,
exact for polynomials of degree < 2m in σ² (Golub & Meurant 2010, *Matrices, Moments and
Quadrature*; Ubaru, Chen & Saad 2017, SIAM J. Matrix Anal. Appl. 38(4)). Stochastic Lanczos
quadrature (SLQ) averages this over P probes per example and over the B examples of a step.

The density returned is the *binned Ritz weights*: a histogram's bin gets the average weight of the
nodes that fall in it, times the number of singular values it stands for (U·B·S), so the counts are
expected counts on exactly the dense histogram's bins, with no smoothing kernel (a Gaussian kernel
would add a bias of its own width). The same nodes and weights give σ̄ = ∫σ dμ, χ_F = ∫σ² dμ (for
each probe this equals vᵀJᵀJv exactly: the Hutchinson estimate of ‖J‖_F²/S), the median and the
fraction below ``near_zero`` from the weighted CDF, and the Roy–Vetterli effective rank
exp(log(S σ̄) − ∫σ log σ dμ / σ̄) (NOTE [Spectrum summary] in :mod:`spectrumkit.spectra.summary`).
Two errors remain and both shrink as measured in ``tests/test_matfree.py``: the probe noise
(a bin holding n of the S values has a relative standard deviation of about
√(2(S − P)/(S·n·B·P))) and the
quadrature's resolution (m nodes per probe; averaged over probes the nodes spread over the bins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..cells import Cell
from ..errors import SpectrumkitError, check_positive_int, fail
from ..init import make_generator
from ._common import bin_edges, check_bins, check_near_zero
from ._matfree import check_tol, extremes, ritz_runs, setup, stack_extremes
from .extremes import ExtremeSingularValues
from .krylov import RitzValues
from .summary import SUMMARY_COLUMNS, Histogram, Spectrum

__all__ = ["LanczosOptions", "MatrixFree", "SpectralDensity", "lanczos_spectrum"]

Params = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class LanczosOptions:
    """The options of the matrix-free spectrum (``spectrum(..., method="lanczos")``).

    Attributes:
        k: how many extreme singular values (top and bottom) to report per matrix; 1 ≤ k < S.
        iterations: Lanczos steps per probe (m); capped at S, where the Krylov space is complete.
            Must be ≥ k.
        probes: start vectors per example (P); the density averages over B·P runs per step.
        tol: a Ritz value is converged when its residual ≤ tol·σ_1 (NOTE [Golub–Kahan–Lanczos]).
    """

    k: int = 5
    iterations: int = 64
    probes: int = 4
    tol: float = 1e-5

    def __post_init__(self) -> None:
        fn = "LanczosOptions"
        for name in ("k", "iterations", "probes"):
            check_positive_int(fn, name, getattr(self, name))
        check_tol(fn, self.tol)
        if self.iterations < self.k:
            raise fail(fn, f"iterations >= k={self.k}", self.iterations)

    @classmethod
    def coerce(cls, fn: str, value: LanczosOptions | Mapping[str, object] | None
               ) -> LanczosOptions:
        """Accept None (defaults), an instance, or a dict of known keys (others are refused)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"k", "iterations", "probes", "tol"})
            if unknown:
                raise fail(fn, "lanczos options among k, iterations, probes, tol",
                           ", ".join(map(str, unknown)))
            try:
                return cls(**value)  # type: ignore[arg-type]
            except SpectrumkitError as e:
                raise SpectrumkitError(str(e).replace("LanczosOptions", fn, 1)) from None
        raise fail(fn, "lanczos a LanczosOptions, a dict or None", type(value).__name__)



@dataclass(frozen=True)
class SpectralDensity:
    """SLQ nodes and weights of the singular-value density (NOTE [SLQ density]).

    Attributes:
        nodes: (U, B, P, m) Ritz singular values, float64.
        weights: (U, B, P, m) Gauss weights; each (u, b, p) run sums to 1.
        size: S (or N for ``block="hh"``): how many singular values each matrix has.
    """

    nodes: np.ndarray
    weights: np.ndarray
    size: int

    def histogram(self, bins: int | Sequence[float] = 50,
                  value_range: tuple[float, float] | None = None) -> Histogram:
        """Expected counts of the U·B·S singular values on the bins of
        :func:`~spectrumkit.spectra.histogram` (same arguments, same edges; the default range is
        (0, largest node)). ``counts`` are float64; ``outside`` is the expected count outside an
        explicit range (nodes within 1e-6 of the range's span from its ends count as inside)."""
        check_bins("SpectralDensity.histogram", bins, value_range)
        return _density_histogram(self, bins, value_range)

    def summary(self, near_zero: float = 1e-2) -> dict[str, float]:
        """mean, median, frac_near_zero, chi_F and effective_rank of the pooled density; min,
        max and condition need the extremes (see :func:`lanczos_spectrum`)."""
        near_zero = check_near_zero("SpectralDensity.summary", near_zero)
        return _density_summary(self.nodes, self.weights, self.size, near_zero)


def _density_histogram(d: SpectralDensity, bins: int | Sequence[float],
                       value_range: tuple[float, float] | None) -> Histogram:
    edges = bin_edges(bins, value_range, float(d.nodes.max()))
    nodes, w = d.nodes.ravel(), d.weights.ravel()
    # A converged top Ritz value equals σ_max up to rounding; when the edges end at a dense
    # σ_max it must not fall out by an ulp: nodes within 1e-6 of the span snap onto the ends.
    tiny = 1e-6 * (edges[-1] - edges[0])
    nodes = np.where(np.abs(nodes - edges[-1]) <= tiny, edges[-1],
                     np.where(np.abs(nodes - edges[0]) <= tiny, edges[0], nodes))
    runs = d.nodes[..., 0].size                 # U·B·P runs, each of total weight 1
    total = runs / d.nodes.shape[-2] * d.size    # U·B·S singular values
    counts, _ = np.histogram(nodes, bins=edges, weights=w)
    outside = float(w[(nodes < edges[0]) | (nodes > edges[-1])].sum())
    return Histogram(counts * (total / runs), edges, outside * (total / runs))


def _weighted_median(nodes: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(nodes, kind="stable")
    cdf = np.cumsum(w[order])
    return float(nodes[order][np.searchsorted(cdf, 0.5 * cdf[-1])])


def _density_summary(nodes: np.ndarray, w: np.ndarray, size: int, near_zero: float
                     ) -> dict[str, float]:
    """Density statistics over every run in (..., B, P, m) arrays (NOTE [SLQ density])."""
    runs = nodes[..., 0].size
    mean_b = (nodes * w).sum((-1, -2)) / nodes.shape[-2]                # σ̄ per example
    slogs = np.where(nodes > 0, nodes * np.log(np.where(nodes > 0, nodes, 1.0)), 0.0)
    ent_b = (slogs * w).sum((-1, -2)) / nodes.shape[-2]                 # ∫σ log σ per example
    safe = np.where(mean_b > 0, mean_b, 1.0)
    erank = np.where(mean_b > 0, np.exp(np.log(size * safe) - ent_b / safe), 0.0)
    return {
        "mean": float((nodes * w).sum() / runs),
        "median": _weighted_median(nodes.ravel(), w.ravel()),
        "frac_near_zero": float((w * (nodes < near_zero)).sum() / runs),
        "chi_F": float((nodes * nodes * w).sum() / runs),
        "effective_rank": float(erank.mean()),
    }


def _summary_row(nodes: np.ndarray, w: np.ndarray, size: int, top: torch.Tensor,
                 bottom: torch.Tensor, near_zero: float) -> dict[str, float]:
    """One row of SUMMARY_COLUMNS: the density statistics plus min/max/condition from the
    extremes (max = largest top Ritz value, a lower bound of σ_max; min = smallest bottom Ritz
    value, an upper bound of σ_min; condition = median over matrices of their ratio)."""
    row = _density_summary(nodes, w, size, near_zero)
    hi = top[..., 0].reshape(-1).numpy()
    lo = bottom[..., 0].reshape(-1).numpy()
    kappa = np.divide(hi, lo, out=np.full_like(hi, np.inf), where=lo > 0)
    row.update(min=float(lo.min()), max=float(hi.max()), condition=float(np.median(kappa)))
    return {c: row[c] for c in SUMMARY_COLUMNS}


@dataclass(frozen=True)
class MatrixFree:
    """What the matrix-free spectrum adds to :class:`~spectrumkit.spectra.Spectrum`.

    Attributes:
        density: the SLQ :class:`SpectralDensity` (re-bin it with ``density.histogram``).
        extremes: :class:`ExtremeSingularValues` from each example's first probe.
        options: the :class:`LanczosOptions` used (``iterations`` as capped at S).
    """

    density: SpectralDensity
    extremes: ExtremeSingularValues
    options: LanczosOptions


def lanczos_spectrum(cell: str | Cell, params: Params, xs: torch.Tensor, *,
                     states: torch.Tensor | None = None,
                     steps: int | Sequence[int] | None = None, block: str = "full",
                     lanczos: LanczosOptions | Mapping[str, object] | None = None,
                     generator: torch.Generator | None = None, seed: int | None = None,
                     bins: int | Sequence[float] = 50,
                     value_range: tuple[float, float] | None = None,
                     near_zero: float = 1e-2) -> Spectrum:
    r"""The spectrum of :func:`~spectrumkit.spectra.spectrum` without forming any Jacobian.

    For every selected step, P = ``lanczos.probes`` orthonormal random probes per example each run
    m = ``lanczos.iterations`` Golub–Kahan–Lanczos steps (NOTE [Golub–Kahan–Lanczos]); the Ritz
    nodes and weights give the SLQ density and its statistics (NOTE [SLQ density]), and the first
    probe of each example gives its k extreme singular values with residuals. Memory: the two
    Lanczos bases of at most a chunk of rows, 2·rows·m·S numbers with rows ≤ B·P chosen to fit
    256 MiB (at least one row), plus the states: O(B·S·(m + T)), never B·S².

    Args:
        cell, params, xs (T, B, D), states (T+1, B, S), steps, block: as in
            :func:`~spectrumkit.jacobians.step_jacobians`.
        lanczos: :class:`LanczosOptions` (or a dict of its fields); defaults when None.
        generator, seed: exactly one (the probes).
        bins, value_range, near_zero: as in :func:`~spectrumkit.spectra.spectrum`.

    Returns:
        :class:`~spectrumkit.spectra.Spectrum` with the same table columns, pooled summary and
        histogram as the dense path (the histogram's counts are float64 expected counts;
        NOTE [SLQ density]); ``singular_values`` holds the top-k Ritz values (U, B, k) only, and
        ``matrix_free`` the density, the extremes with their convergence flags, and the options.

    >>> import torch
    >>> from spectrumkit.init import init_params
    >>> p = init_params("gru", 3, 16, "glorot", seed=0, dtype=torch.float64)
    >>> xs = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> sp = lanczos_spectrum("gru", p, xs, steps=2, seed=0, bins=10)
    >>> round(float(sp.histogram.counts.sum()), 9), list(sp.table.index)   # U·B·S = 2·2·16
    (64.0, [4, 5])
    """
    fn = "spectrum"
    opts = LanczosOptions.coerce(fn, lanczos)
    near_zero = check_near_zero(fn, near_zero)
    check_bins(fn, bins, value_range)
    g = make_generator(generator, seed, fn)
    st = setup(fn, cell, params, xs, states, steps, block, opts.k)
    m = min(opts.iterations, st.size)
    B, P = xs.shape[1], opts.probes
    nodes = np.empty((len(st.steps), B, P, m))
    weights = np.empty_like(nodes)
    parts = []
    with torch.no_grad():
        for i, t in enumerate(st.steps):
            runs = ritz_runs(st, xs, t, P, m, block, g)
            sigma = torch.cat([r.sigma for r in runs])
            nodes[i] = sigma.view(B, P, m).numpy()
            weights[i] = torch.cat([r.weight for r in runs]).view(B, P, m).numpy()
            first = RitzValues(*(torch.cat(f).view(B, P, m)[:, 0] for f in zip(*runs)))
            parts.append(extremes(first, opts.k, opts.tol))
    ev = ExtremeSingularValues(*stack_extremes(parts), torch.tensor([m] * len(st.steps)),
                               opts.tol)
    density = SpectralDensity(nodes, weights, st.size)
    rows = [_summary_row(nodes[i], weights[i], st.size, ev.top[i], ev.bottom[i],
                         near_zero) for i in range(len(st.steps))]
    table = pd.DataFrame(rows, index=pd.Index(st.steps, name="step"),
                         columns=list(SUMMARY_COLUMNS))
    pooled = _summary_row(nodes, weights, st.size, ev.top, ev.bottom, near_zero)
    hist = _density_histogram(density, bins, value_range)
    return Spectrum(table, pooled, hist, ev.top.clone(),
                    matrix_free=MatrixFree(density, ev,
                                           LanczosOptions(opts.k, m, P, opts.tol)))
