r"""Options of every score method: defaults, validation and the ``balance`` rescaling.

Every option is checked at the door of :func:`~spectrumkit.scores.compute_scores`: an unknown option
name, a misspelled choice or a value of the wrong type is a :class:`SpectrumkitError` that lists the
accepted ones (NOTE [Score options] in ``spectrumkit/scores/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..cells import BLOCKS, Cell, entry_labels
from ..errors import check_choice, check_keys, check_positive_int, check_unit_interval, fail
from ..spectra import CHI_ESTIMATORS

from .recipes import DEFAULT_RECIPE, RECIPES

__all__ = ["BALANCE", "GAMMA_INPUTS", "GAMMA_OBJECTIVES", "GAMMA_READOUTS", "GAMMA_STATES",
           "METHODS", "NORMALIZE", "OPTIONS"]

METHODS = ("jacobian", "snip", "foresight", "magnitude", "random", "synflow")
NORMALIZE = ("gamma", "none")
GAMMA_INPUTS = ("gaussian", "data", "authors")
GAMMA_STATES = ("zero", "authors")
BALANCE = ("none", "gate", "block")
GAMMA_READOUTS = ("sum", "last")
GAMMA_OBJECTIVES = ("hidden", "chi")

_GAMMA = {"gamma_inputs": "gaussian", "gamma_state": "zero", "gamma_steps": None,
          "gamma_sequences": None, "gamma_readout": "sum", "gamma_objective": "hidden",
          "gamma_floor": 1e-3, "gamma": None}
#: the options that choose how γ is computed (a precomputed ``gamma=`` excludes them)
_GAMMA_MAKERS = ("gamma_inputs", "gamma_state", "gamma_steps", "gamma_sequences",
                 "gamma_readout", "gamma_objective")

#: Accepted options and their defaults, per method (jacobian: those of :data:`DEFAULT_RECIPE`).
OPTIONS: dict[str, dict[str, Any]] = {
    "jacobian": {**RECIPES[DEFAULT_RECIPE].score, "probes": 1, "gamma": None,
                 "recipe": DEFAULT_RECIPE},
    "snip": {"normalize": "none", **_GAMMA, "balance": "none"},
    "foresight": {"normalize": "none", **_GAMMA, "balance": "none"},
    "magnitude": {"balance": "none"},
    "random": {"balance": "none"},
    "synflow": {"density": None, "iterations": 100, "balance": "none"},
}


def _check_bool(fn: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(fn, f"{name} to be True or False", repr(value))
    return value


def _check_count(fn: str, name: str, value: Any, what: str) -> None:
    """None (the batch's own) or an int >= 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise fail(fn, f"{name} to be None ({what} of the batch) or an integer >= 1", repr(value))


def resolve_options(fn: str, method: str, options: Mapping[str, Any], T: int,
                    B: int | None = None) -> dict[str, Any]:
    """Validate ``options`` for ``method`` (T, B = steps, examples of the batch) and fill in the
    defaults: a ``recipe``'s values (jacobian, NOTE [Recipes]) under the options given."""
    check_choice(fn, "method", method, METHODS)
    accepted = OPTIONS[method]
    check_keys(fn, f"options of method {method!r}", options, accepted)
    if "recipe" in accepted:
        recipe = options.get("recipe", DEFAULT_RECIPE)
        check_choice(fn, "recipe", recipe, RECIPES)
        accepted = {**accepted, **RECIPES[recipe].score, "recipe": recipe}
    o = {**accepted, **options}
    if "horizon" in o:
        check_positive_int(fn, "horizon", o["horizon"])
        if o["horizon"] > T:
            raise fail(fn, f"horizon U in 1..T={T} (the batch has T={T} steps)", o["horizon"])
    if "estimator" in o:
        check_choice(fn, "estimator", o["estimator"], CHI_ESTIMATORS)
    if "probes" in options and o["estimator"] != "hutchinson":
        raise fail(fn, "probes only together with estimator='hutchinson'",
                   f"probes with estimator={o['estimator']!r}")
    if "through_time" in o:
        _check_bool(fn, "through_time", o["through_time"])
    for name in ("batch_size", "probes", "iterations"):
        if name in o:
            check_positive_int(fn, name, o[name])
    if "discount" in o:
        check_unit_interval(fn, "discount", o["discount"], low_open=True, high_open=False)
    if "normalize" in o:
        check_choice(fn, "normalize", o["normalize"], NORMALIZE)
    if "gamma_inputs" in o:
        unused = sorted(set(_GAMMA) & set(options))
        if unused and o["normalize"] != "gamma":
            raise fail(fn, "gamma options only together with normalize='gamma'",
                       f"{', '.join(unused)} with normalize={o['normalize']!r}")
        check_choice(fn, "gamma_inputs", o["gamma_inputs"], GAMMA_INPUTS)
        check_choice(fn, "gamma_state", o["gamma_state"], GAMMA_STATES)
        check_choice(fn, "gamma_readout", o["gamma_readout"], GAMMA_READOUTS)
        check_choice(fn, "gamma_objective", o["gamma_objective"], GAMMA_OBJECTIVES)
        _check_count(fn, "gamma_steps", o["gamma_steps"], "the steps")
        _check_count(fn, "gamma_sequences", o["gamma_sequences"], "the examples")
        if o["gamma_inputs"] == "data":
            # a recipe's length and count are capped at the batch's own; explicit ones are checked
            n = min(B, o.get("batch_size", B)) if B is not None else None
            for k, lim in (("gamma_steps", T), ("gamma_sequences", n)):
                if k not in options and o[k] is not None and lim is not None:
                    o[k] = min(o[k], lim)
            if o["gamma_steps"] is not None and o["gamma_steps"] > T:
                raise fail(fn, f"gamma_steps <= T={T} with gamma_inputs='data' (the batch's "
                           "own steps)", o["gamma_steps"])
            n = min(B, o.get("batch_size", B)) if B is not None else None
            if n is not None and o["gamma_sequences"] is not None and o["gamma_sequences"] > n:
                raise fail(fn, f"gamma_sequences <= {n} with gamma_inputs='data' (the batch's "
                           "own examples)", o["gamma_sequences"])
        check_unit_interval(fn, "gamma_floor", o["gamma_floor"], low_open=False, high_open=True)
        if o["gamma"] is not None:
            clash = sorted(set(_GAMMA_MAKERS) & set(options))
            if clash:
                raise fail(fn, "either a precomputed gamma= or the options that make one "
                           f"({', '.join(_GAMMA_MAKERS)})", f"gamma= and {', '.join(clash)}")
    check_choice(fn, "balance", o["balance"], BALANCE)
    if method == "synflow":
        if o["density"] is None:
            raise fail(fn, "density= for synflow (the target density it prunes towards, "
                       "iteratively)", "none")
        check_unit_interval(fn, "density", o["density"], low_open=True, high_open=False)
    return o


# NOTE [Balance]
# The authors' code can rescale scores so that groups of entries compete on an equal footing:
# ``balance="gate"`` divides every score by the mean |score| over all pruned entries of its gate
# (input, recurrent, peephole and — when pruned — bias entries together); ``balance="block"`` by the
# mean |score| over its block (input / recurrent / cell / bias, all gates together). A group whose
# mean |score| is exactly 0 is all zeros and is left as is. Balancing needs the cell's layout.


def balance_scores(fn: str, scores: dict[str, torch.Tensor], cell: Cell, input_size: int,
                   hidden_size: int, how: str) -> dict[str, torch.Tensor]:
    """Apply NOTE [Balance] to ``scores`` ({name: tensor}); returns a new dict."""
    if how == "none":
        return scores
    if cell.layout is None:
        raise fail(fn, f"balance={how!r} only for a cell with a layout "
                   "(make_cell(..., layout=...))",
                   f"cell {cell.name!r} without one")
    labels = entry_labels(cell, input_size, hidden_size)
    groups = []
    for name in scores:
        gate, block = labels[name]
        groups.append((gate if how == "gate" else torch.full_like(gate, BLOCKS.index(block)))
                      .reshape(-1))
    first = next(iter(scores.values()))
    idx = torch.cat(groups).to(first.device)
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    n_groups = len(cell.gates) if how == "gate" else len(BLOCKS)
    sums = flat.new_zeros(n_groups).scatter_add_(0, idx, flat.abs())
    mean = sums / torch.bincount(idx, minlength=n_groups).clamp_min(1).to(flat.dtype)
    scale = torch.where(mean > 0, mean, torch.ones_like(mean))
    out = (flat / scale[idx]).split([s.numel() for s in scores.values()])
    return {name: o.view_as(s) for (name, s), o in zip(scores.items(), out)}
