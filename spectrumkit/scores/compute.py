r"""compute_scores: the one entry point of the score methods (NOTE [Score options] in
``spectrumkit/scores/__init__.py``), by its public name ``spectrumkit.scores.compute_scores``."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import fail
from ..protocols import RecurrentModel, check_model
from .balance import balance_scores
from .common import check_finite_scores, check_inputs_match, check_nonempty_batch, grad_on
from .gamma import check_gamma
from .options import METHODS, OPTION_MODELS, SCORE_REGISTRY, ScoreOptions, options_for

__all__ = ["compute_scores"]


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
        method: one of :data:`METHODS` (the table of :mod:`spectrumkit.scores`), or the score
            part of a run configuration (an options object, :func:`options_for`; e.g.
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
