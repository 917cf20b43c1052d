r"""Pruning-at-initialization scores: one entry point, six methods, higher = keep.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, P = parameters.

=============  ========================================================  ==========================
method         score of pruned entry θ_n                                 module
=============  ========================================================  ==========================
``jacobian``   Σ_u λ^{u-1} |∂χ^(u)/∂θ_n| / max(|γ_n|, τ) (the paper)    ``scores/jacobian.py``
``snip``       |θ_n ∂L/∂θ_n|  (optionally / max(|γ_n|, τ))               ``scores/saliency.py``
``foresight``  θ_n (H g)_n    (optionally / max(|γ_n|, τ))               ``scores/saliency.py``
``magnitude``  |θ_n|                                                     ``scores/saliency.py``
``random``     U(0, 1)                                                   ``scores/saliency.py``
``synflow``    iterative |θ| ⊙ ∂R/∂|θ|, all-ones input                   ``scores/synflow.py``
=============  ========================================================  ==========================

γ and its guard τ: ``scores/gamma.py`` (NOTE [γ normalization]). ``balance``: NOTE [Balance] in
``scores/balance.py``. Masks from scores: :func:`spectrumkit.masks.topk_mask`.

NOTE [Score options]
Options are keyword arguments of :func:`compute_scores` (or one ready object, ``options=``);
each method accepts its own and refuses any other, listing the accepted ones. Each method's
options are one pydantic model of ``scores/options.py`` (``OPTION_MODELS``; ``OPTIONS`` lists them
with their defaults), which owns their defaults, their checks and whether they draw random
numbers. Choices are strings, checked exactly (``estimator="frob"`` is an error, never a
silent default); integers must be ints (``horizon="4"`` is an error). The jacobian defaults are
those of the default recipe (``DEFAULT_RECIPE``; NOTE [Recipes] in ``scores/recipes.py``).

===================  ===========================  ===========================================
option               methods                      values (default first)
===================  ===========================  ===========================================
``horizon``          jacobian                     U in 1..T, or all = T (4)
``estimator``        jacobian                     ones, transpose, frobenius, hutchinson
``through_time``     jacobian                     False, True (NOTE [through_time])
``discount``         jacobian                     λ in (0, 1] (1.0; the authors' code: 0.9)
``batch_size``       jacobian                     examples for χ and γ (64; fewer if B < 64)
``probes``           jacobian                     Rademacher probes for hutchinson (1)
``normalize``        jacobian, snip, foresight    gamma (jacobian) / none (snip, foresight)
``gamma_inputs``     jacobian, snip, foresight    gaussian, data, authors
``gamma_state``      jacobian, snip, foresight    zero, authors
``gamma_steps``      jacobian, snip, foresight    γ's sequence length T̃: None (batch's T) or ≥ 1
``gamma_sequences``  jacobian, snip, foresight    γ's sequence count B̃: None (batch's B) or ≥ 1
``gamma_readout``    jacobian, snip, foresight    sum (all T̃ steps), last (NOTE [γ objective])
``gamma_objective``  jacobian, snip, foresight    hidden (Eq. 7), chi (NOTE [γ objective])
``gamma_floor``      jacobian, snip, foresight    relative floor of |γ| in [0, 1) (1e-3; 0 = none)
``gamma``            jacobian, snip, foresight    a precomputed γ from :func:`compute_gamma`
``recipe``           jacobian                     a named bundle of the options above
                                                  (NOTE [Recipes]; explicit options override it)
``density``          synflow (required)           target density in (0, 1]
``iterations``       synflow                      rounds of the schedule (100)
``balance``          all                          none, gate, block (NOTE [Balance])
===================  ===========================  ===========================================

NOTE [Score cost]
SNIP is one forward pass with a graph and one backward pass through the T steps. γ is exactly the
same amount of work (a forward pass with a graph and a backward pass through T steps, on the γ
inputs, with the same B and T), so every γ-normalized score costs at least one SNIP. The jacobian
score adds a forward pass without a graph over T − 1 steps (the states, about a third of SNIP's
work) and U one-step JVPs with their backward passes: its floor is about 1.3× SNIP, whatever the
implementation, and benchmarks/bench_scores.py measures about 1.6× (GRU, N = 400, B = 64, T = 28).
With ``gamma_inputs="data"`` and ``gamma_state="zero"`` the γ pass doubles as the state pass
(about 1.3×). To compare several normalized scores of ONE initialization, compute γ once with
:func:`compute_gamma` and pass it as ``gamma=``: the jacobian score then costs about 0.7× SNIP.
A γ on a short sequence of its own (NOTE [γ objective]: the authors' 5 steps of 100 sequences)
costs a fraction of a SNIP pass, even with the χ̃ objective's double back-propagation; the
``authors`` recipe's through-time χ costs U back-propagations through up to T steps.
benchmarks/bench_scores.py prints every recipe's ratio (README, "Recipes of the Jacobian score").
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import fail
from ..protocols import RecurrentModel, check_model
from .balance import balance_scores
from .common import check_finite_scores, check_inputs_match, check_nonempty_batch, grad_on
from .gamma import check_gamma, compute_gamma
from .options import (
    METHODS,
    OPTION_MODELS,
    OPTIONS,
    SCORE_REGISTRY,
    ScoreOptions,
    options_for,
)
from .recipes import DEFAULT_RECIPE, RECIPES, Recipe, recipe_table

__all__ = ["DEFAULT_RECIPE", "METHODS", "OPTIONS", "OPTION_MODELS", "RECIPES", "Recipe",
           "SCORE_REGISTRY", "ScoreOptions", "compute_gamma", "compute_scores", "options_for",
           "recipe_table"]


def _options(fn: str, method: str, given: ScoreOptions | None, options: dict[str, Any]
             ) -> ScoreOptions:
    """The options object: ``given`` (a ready one, for ``method``) or built from keywords."""
    if given is None:
        return options_for(method, fn, **options)
    if options:
        raise fail(fn, "either options= or keyword options", f"options= and {', '.join(options)}")
    if not isinstance(given, OPTION_MODELS[method]):
        raise fail(fn, f"options= a {OPTION_MODELS[method].__name__} for method {method!r} "
                   f"(spectrumkit.scores.options_for({method!r}, ...))", type(given).__name__)
    return given


def compute_scores(method: str | ScoreOptions, model: RecurrentModel, batch: Any, *,
                   generator: torch.Generator | None = None, include_bias: bool = False,
                   options: ScoreOptions | None = None, **kwargs: Any
                   ) -> dict[str, torch.Tensor]:
    r"""Pruning scores of ``model``'s recurrent cell; higher means keep.

    Args:
        method: one of :data:`METHODS` (see the table above), or the score part of a run
            configuration (an options object, :func:`options_for`; e.g.
            ``RunConfig.scoring()``): the method and its options together.
        model: a :class:`~spectrumkit.protocols.RecurrentModel`: a
            :class:`~spectrumkit.models.SequenceClassifier` or
            :class:`~spectrumkit.models.LanguageModel` (any cell, user cells included).
        batch: one minibatch in the model's format (classifier: xs (B, T, D), ys (B,); language
            model: inputs (B, T), targets (B, T)); validated by ``model.check_batch``.
        generator: a ``torch.Generator``, required when the method draws random numbers (random,
            the hutchinson estimator, γ from gaussian/authors inputs or the authors' state).
        include_bias: score the cell's biases too (they stay dense by default).
        options: a ready options object (:func:`options_for` ``(method, ...)``, an instance of
            ``OPTION_MODELS[method]``), instead of keyword options.
        **kwargs: the method's options, NOTE [Score options].

    Returns:
        ``{name: scores}`` keyed and shaped like ``model.prunable(include_bias)``, detached, with
        the parameters' dtype and device. The model is not modified (``requires_grad`` flags are
        restored; no ``.grad`` is written).

    >>> from spectrumkit.models import SequenceClassifier
    >>> m = SequenceClassifier("gru", 2, 3, 2, seed=0, dtype=torch.float64)
    >>> batch = (torch.ones(4, 5, 2, dtype=torch.float64), torch.tensor([0, 1, 0, 1]))
    >>> s = compute_scores("magnitude", m, batch)
    >>> bool(torch.equal(s["weight_hh"], m.rnn["weight_hh"].detach().abs()))
    True
    >>> t = compute_scores("magnitude", m, batch, options=options_for("magnitude"))
    >>> bool(torch.equal(s["weight_hh"], t["weight_hh"]))
    True
    """
    fn = "compute_scores"
    if isinstance(method, ScoreOptions):  # the score part: its method and its options
        options, method = method, method.method_name()
        if kwargs:
            raise fail(fn, "either the score part or keyword options",
                       f"the score part and {', '.join(kwargs)}")
    if not isinstance(method, str) or method not in METHODS:
        raise fail(fn, f"method one of {', '.join(map(repr, METHODS))}", repr(method))
    model = check_model(fn, model)
    model.check_batch(fn, batch)
    if not isinstance(include_bias, bool):
        raise fail(fn, "include_bias to be True or False", repr(include_bias))
    xs = model.cell_inputs(batch).detach()
    check_nonempty_batch(fn, xs)
    check_inputs_match(fn, model, xs)
    opts = _options(fn, method, options, kwargs)
    o = opts.for_batch(fn, int(xs.shape[0]), int(xs.shape[1]))
    theta = model.prunable(include_bias)
    if o.get("gamma") is not None:
        o["gamma"] = check_gamma(fn, o["gamma"], theta)
    why = opts.draws_random()
    if why is not None and not isinstance(generator, torch.Generator):
        raise fail(fn, f"generator= a torch.Generator ({why} draws random numbers)",
                   type(generator).__name__)
    with grad_on(theta):
        scores = SCORE_REGISTRY[method].load()(fn, model, batch, xs, theta, generator, o)
    scores = {n: s.detach() for n, s in scores.items()}
    scores = balance_scores(fn, scores, model.cell, model.input_size, model.hidden_size,
                            o["balance"])
    check_finite_scores(fn, scores)
    return scores
