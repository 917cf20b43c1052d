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

NOTE [A lazy score package]
``import spectrumkit.scores`` imports no torch: each public name is imported from its module on
first use (PEP 562 ``__getattr__``, as NOTE [A lazy public face] in ``spectrumkit/__init__.py``),
so that the options models (``scores/options.py``) serve a run configuration and a study without
loading the implementations. :func:`compute_scores` lives in ``scores/compute.py``.

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

import importlib
from typing import TYPE_CHECKING

#: ``{public name: the module of this package that defines it}``.
_EXPORTS: dict[str, str] = {
    "DEFAULT_RECIPE": "recipes", "METHODS": "options", "OPTIONS": "options",
    "OPTION_MODELS": "options", "RECIPES": "recipes", "Recipe": "recipes",
    "SCORE_REGISTRY": "options", "ScoreOptions": "options", "compute_gamma": "gamma",
    "compute_scores": "compute", "options_for": "options", "recipe_table": "recipes",
}

__all__ = ["DEFAULT_RECIPE", "METHODS", "OPTIONS", "OPTION_MODELS", "RECIPES", "Recipe",
           "SCORE_REGISTRY", "ScoreOptions", "compute_gamma", "compute_scores", "options_for",
           "recipe_table"]

if TYPE_CHECKING:  # the same names, for type checkers and documentation tools
    from .compute import compute_scores
    from .gamma import compute_gamma
    from .options import METHODS, OPTION_MODELS, OPTIONS, SCORE_REGISTRY, ScoreOptions, options_for
    from .recipes import DEFAULT_RECIPE, RECIPES, Recipe, recipe_table


def __getattr__(name: str) -> object:
    """Import a public name from its module on first use (NOTE [A lazy score package])."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
