r"""The γ normalization of the paper: how strongly each weight moves the hidden states.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, P = parameters.

NOTE [γ normalization]
For every pruned entry θ_n,

.. math::  \gamma_n = \mathbb E_{\tilde x\sim\tilde{\mathcal D}}
           \Big[\sum_{t=1}^{T}\sum_{i=1}^{N} \frac{\partial h_i^{(t)}}{\partial\theta_n}\Big]
           \approx \frac1B \frac{\partial}{\partial\theta_n}
           \sum_{b=1}^{B}\sum_{t=1}^{T}\sum_{i=1}^{N} h_{b,i}^{(t)},

with h the readout (the first N entries of the state: h, not c, for the LSTMs), computed by ONE
reverse pass through the T steps. The sequence has the batch's T steps and B examples (for the
jacobian score: the examples its χ uses). Its inputs ``gamma_inputs``:

* ``"gaussian"`` (default): x̃ ~ N(0, 0.1²), drawn as ``0.1 * randn(T, B, D)``;
* ``"authors"``:  x̃ ~ 1 + N(0, 0.1²) (the authors' code; the paper leaves open whether their
  1 + N(0, 0.1) is meant for the inputs or the state, so both are offered);
* ``"data"``:     the batch's own cell inputs (no draw).

Its initial state ``gamma_state``: ``"zero"`` (default) or ``"authors"``, s̃_0 ~ 1 + N(0, 0.1²)
(all S entries, so h and c for the LSTMs), drawn as ``1 + 0.1 * randn(B, S)``. Draws use the
caller's generator on the CPU, inputs first and then the state, and are moved to the parameters'
device, so a seed gives the same γ on every device.

Guard against |γ| ≈ 0. Normalized scores divide by

.. math::  \max(|\gamma_n|,\ \tau),\qquad \tau = \mathrm{gamma\_floor}\cdot
           \frac1P\sum_{m=1}^{P}|\gamma_m|,

the mean taken over ALL pruned entries (every tensor together), ``gamma_floor = 1e-3`` by default.
So no entry can gain more than 1000× over an entry of average γ merely because its own γ vanishes
(for x̃ ~ N(0, 0.1²) the γ of an input weight is a zero-mean Monte-Carlo estimate, and some are tiny
by chance). If |γ| is 0 for every entry the normalization is undefined and an error is raised.
``gamma_floor = 0`` divides by |γ| itself, as the authors' code does; an entry with γ exactly 0 is
then an error.

NOTE [γ objective]
γ's own sequence need not be the batch's: ``gamma_steps`` T̃ (None: the batch's T; the authors: 5)
and ``gamma_sequences`` B̃ (None: the batch's B, for the jacobian score its ``batch_size``
examples; the authors: 100). What is differentiated on it (``docs/authors-code.md`` §4):

* ``gamma_objective="hidden"`` (Eq. 7, default): the mean over the B̃ sequences of Σ_i h̃_i^(t),
  summed over every step t = 1..T̃ (``gamma_readout="sum"``, default) or taken at t = T̃ only
  (``"last"``: the paper's appendix, "only the activations from the last time step", and the
  authors' γ of normalized SNIP / Foresight);
* ``gamma_objective="chi"``: χ̃ = (1/B̃) Σ_b χ(J̃_t), the χ of the γ sequence's own step Jacobians
  J̃_t = ∂s̃_t/∂s̃_{t-1} at (x̃_t, s̃_{t-1}), with s̃_{t-1} a function of θ (the gradient runs
  through all earlier steps), at t = T̃ only (``"last"``: the authors' γ of the Jacobian score,
  "the gradient of its own objective") or summed over t = 1..T̃ (``"sum"``). The χ estimator is the
  jacobian score's own ``estimator`` (``transpose`` = the authors' mean (J̃ᵀ1)²; Hutchinson probes
  are drawn after the sequence), and ``transpose`` for SNIP and Foresight (the authors'
  ``dummy_objective="jacobian"``).

Both are ONE reverse pass through T̃ steps of B̃ sequences: with T̃ = 5 and B̃ = 100 that is a
fraction of a SNIP pass over 28 steps of 64 examples (NOTE [Score cost]).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch

from .._unroll import unroll_states
from ..choices import ESTIMATORS, GAMMA_INPUTS, GAMMA_OBJECTIVES, GAMMA_READOUTS, GAMMA_STATES
from ..errors import check_choice, check_positive_int, fail
from ..protocols import RecurrentModel, check_model
from ..spectra import chi_step
from .common import check_inputs_match, grad_on, grads
from .options import gamma_needs_generator

__all__ = ["compute_gamma", "gamma_denominator"]

Params = Mapping[str, torch.Tensor]


def draw_gamma_sequence(model: RecurrentModel, xs: torch.Tensor, generator: torch.Generator | None,
                        inputs: str, state: str, steps: int | None = None,
                        sequences: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The γ sequence of NOTE [γ normalization]: (inputs (T̃, B̃, D), s0 (B̃, S)).

    T̃ = ``steps`` and B̃ = ``sequences`` (None: the batch's T and B); ``inputs="data"`` takes the
    batch's first T̃ steps of its first B̃ examples.
    """
    T, B, D = xs.shape
    T = T if steps is None else steps
    B = B if sequences is None else sequences
    S = model.cell.state_size(model.hidden_size)
    w = next(iter(model.cell_params().values()))
    if inputs == "data":
        x = xs[:T, :B]
    else:
        x = 0.1 * torch.randn(T, B, D, generator=generator, dtype=w.dtype)
        x = (x + 1.0 if inputs == "authors" else x).to(w.device)
    if state == "zero":
        s0 = x.new_zeros(B, S)
    else:
        s0 = (1.0 + 0.1 * torch.randn(B, S, generator=generator, dtype=w.dtype)).to(w.device)
    return x, s0


def _gamma(model: RecurrentModel, theta: Mapping[str, torch.Tensor], xs: torch.Tensor,
           generator: torch.Generator | None, inputs: str, state: str, *,
           steps: int | None = None, sequences: int | None = None, readout: str = "sum",
           objective: str = "hidden", estimator: str = "transpose", probes: int = 1,
           keep_graph: bool = False) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Trusted core: γ for the tensors ``theta`` (Parameters of the model's cell).

    xs: (T, B, D) cell inputs of the batch. Returns ``(gamma, states)`` with states (T̃+1, B̃, S)
    of the γ sequence, s̃_0 .. s̃_T̃ (objective ``"chi"``: (T̃, B̃, S), s̃_0 .. s̃_{T̃-1}, all that
    its step Jacobians need, so the last step is not computed); the graph is retained (for reuse)
    when ``keep_graph``. NOTE [γ objective].
    """
    x, s0 = draw_gamma_sequence(model, xs, generator, inputs, state, steps, sequences)
    cell, params = model.cell, model.cell_params()
    states = unroll_states(cell, params, x if objective == "hidden" else x[:-1], s0)
    if objective == "hidden":
        read = states[1:] if readout == "sum" else states[-1:]
        total = cell.output(read).sum() / x.shape[1]
    else:
        ts = range(x.shape[0]) if readout == "sum" else [x.shape[0] - 1]
        total = cast(torch.Tensor, sum(chi_step(cell, params, x[t], states[t], estimator,
                                                probes=probes, generator=generator).mean()
                                       for t in ts))
    return grads(total, theta, retain_graph=keep_graph), states


def gamma_of(model: RecurrentModel, theta: Mapping[str, torch.Tensor], xs: torch.Tensor,
             generator: torch.Generator | None, o: Mapping[str, Any], estimator: str, *,
             probes: int = 1, keep_graph: bool = False
             ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """:func:`_gamma` with a method's resolved options ``o`` (NOTE [γ objective])."""
    return _gamma(model, theta, xs, generator, o["gamma_inputs"], o["gamma_state"],
                  steps=o["gamma_steps"], sequences=o["gamma_sequences"],
                  readout=o["gamma_readout"], objective=o["gamma_objective"],
                  estimator=estimator, probes=probes, keep_graph=keep_graph)


def gamma_denominator(fn: str, gamma: Mapping[str, torch.Tensor], floor: float
                      ) -> dict[str, torch.Tensor]:
    r"""max(|γ_n|, τ) of NOTE [γ normalization], per tensor; error if γ is 0 everywhere."""
    absg = {n: g.abs() for n, g in gamma.items()}
    total = sum(float(a.sum()) for a in absg.values())
    count = sum(a.numel() for a in absg.values())
    if not total > 0:
        raise fail(fn, "a γ that is not zero everywhere (γ normalization divides by |γ|)",
                   f"|γ| = 0 for all {count} pruned entries")
    if floor == 0:
        zero = sum(int((a == 0).sum()) for a in absg.values())
        if zero:
            raise fail(fn, "a γ that is nonzero for every entry with gamma_floor=0 (no floor: "
                       "the scores divide by |γ| itself)", f"|γ| = 0 for {zero} of {count} entries")
        return absg
    tau = floor * total / count
    return {n: a.clamp_min(tau) for n, a in absg.items()}


def check_gamma(fn: str, gamma: Any, theta: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A precomputed ``gamma=`` must be keyed and shaped like the pruned set, finite, float."""
    if not isinstance(gamma, Mapping):
        raise fail(fn, "gamma= a dict of tensors from compute_gamma", type(gamma).__name__)
    if set(gamma) != set(theta):
        raise fail(fn, f"gamma= keyed like the pruned set {sorted(theta)}", sorted(gamma))
    out = {}
    for n, p in theta.items():
        g = gamma[n]
        if not isinstance(g, torch.Tensor) or g.shape != p.shape or not g.is_floating_point():
            raise fail(fn, f"gamma[{n!r}] a float tensor of shape {tuple(p.shape)}",
                       f"{type(g).__name__} of shape {tuple(getattr(g, 'shape', ()))}")
        if not bool(torch.isfinite(g).all()):
            raise fail(fn, f"gamma[{n!r}] finite",
                       f"{int((~torch.isfinite(g)).sum())} NaN/Inf entries of {g.numel()}")
        out[n] = g.to(p)
    return out


def compute_gamma(model: RecurrentModel, batch: Any, *, generator: torch.Generator | None = None,
                  inputs: str = "gaussian", state: str = "zero", include_bias: bool = False,
                  batch_size: int | None = None, steps: int | None = None,
                  sequences: int | None = None, readout: str = "sum", objective: str = "hidden",
                  estimator: str = "transpose") -> dict[str, torch.Tensor]:
    r"""γ of NOTE [γ normalization] and NOTE [γ objective] for the pruned set of ``model``.

    Args:
        model: a :class:`~spectrumkit.models.SequenceClassifier` or
            :class:`~spectrumkit.models.LanguageModel` (anything with ``cell``, ``cell_params``,
            ``prunable``, ``cell_inputs`` and ``check_batch``).
        batch: the model's batch; it fixes T and B by default (and is the input for
            ``inputs="data"``).
        generator: required unless ``inputs="data"`` and ``state="zero"`` (and, for
            ``objective="chi"``, the estimator is deterministic).
        inputs: ``"gaussian"`` | ``"authors"`` | ``"data"``. state: ``"zero"`` | ``"authors"``.
        include_bias: also the cell's biases. batch_size: use the first ``batch_size`` examples
            of the batch (all by default).
        steps: T̃, the γ sequence's length (None: the batch's T; the authors: 5).
        sequences: B̃, its number of sequences (None: the batch's B; the authors: 100).
        readout: ``"sum"`` over all T̃ steps, or ``"last"`` step only.
        objective: ``"hidden"`` (Eq. 7, Σ h) or ``"chi"`` (χ̃ of the step Jacobians).
        estimator: the χ estimator of ``objective="chi"`` (``transpose``: the authors' J̃ᵀ1).

    Returns:
        ``{name: (shape of the parameter)}`` keyed like ``model.prunable(include_bias)``. Pass it to
        :func:`~spectrumkit.scores.compute_scores` as ``gamma=`` to share one γ between the
        normalized scores of one initialization.
    """
    fn = "compute_gamma"
    check_model(fn, model)
    model.check_batch(fn, batch)
    check_choice(fn, "inputs", inputs, GAMMA_INPUTS)
    check_choice(fn, "state", state, GAMMA_STATES)
    check_choice(fn, "readout", readout, GAMMA_READOUTS)
    check_choice(fn, "objective", objective, GAMMA_OBJECTIVES)
    check_choice(fn, "estimator", estimator, ESTIMATORS)
    if not isinstance(include_bias, bool):
        raise fail(fn, "include_bias to be True or False", repr(include_bias))
    for name, v in (("batch_size", batch_size), ("steps", steps), ("sequences", sequences)):
        if v is not None:
            check_positive_int(fn, name, v)
    drawn = gamma_needs_generator(inputs, state) or (objective == "chi"
                                                     and estimator == "hutchinson")
    if drawn and not isinstance(generator, torch.Generator):
        raise fail(fn, f"a torch.Generator for inputs={inputs!r}, state={state!r}, "
                   f"objective={objective!r}, estimator={estimator!r} (they draw random numbers)",
                   type(generator).__name__)
    xs = model.cell_inputs(batch).detach()
    check_inputs_match(fn, model, xs)
    if batch_size is not None:
        xs = xs[:, :batch_size]
    if inputs == "data":
        T, B = xs.shape[:2]
        if steps is not None and steps > T:
            raise fail(fn, f"steps <= T={T} with inputs='data' (the batch's own steps)", steps)
        if sequences is not None and sequences > B:
            raise fail(fn, f"sequences <= B={B} with inputs='data' (the batch's own examples)",
                       sequences)
    theta = model.prunable(include_bias)
    with grad_on(theta):
        return _gamma(model, theta, xs, generator, inputs, state, steps=steps,
                      sequences=sequences, readout=readout, objective=objective,
                      estimator=estimator)[0]
