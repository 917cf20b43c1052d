r"""Named recipes of the Jacobian score: ONE table, read by the options, the CLI and the docs.

A *recipe* bundles every option of ``compute_scores("jacobian", ...)`` under one name
(``recipe="authors"``); options given explicitly override the recipe's values. A recipe also lists
the *regime* it belongs to: the ingredients that are not score options (the cell, its
initialization, the input scale, the training pipeline). Those are fields of a study trial
(:class:`~spectrumkit.study.TrialConfig`: ``cell``, ``init``, ``data.scale``, ``pipeline``,
``block_swap``); the score does not apply them, it only documents them, and ``spectrumkit recipes``
prints them next to the score options.

NOTE [Recipes]
``legacy``  spectrumkit's first jacobian defaults: the paper's Algorithm 1 with χ from
            ‖J 1‖², the states held constant, no discount, U = 4, and γ = Eq. 7 summed over ALL T
            steps of a Gaussian sequence as long and as wide as the scoring batch, from a zero
            state, with the relative floor 1e-3.
``paper``   the paper's text as spectrumkit reads it. Unambiguous: U = 4 last steps, Algorithm 1
            line 9's χ = ‖J_t 1‖² (``ones``), Σ_u |∂χ^(u)/∂θ| / |γ| (no discount), γ = Eq. 7 with
            inputs N(0, 0.1²) and "only the activations from the last time step" (readout
            ``last``). Our readings where the text is silent or ambiguous: (1) the states s_{T-u}
            are held constant (``through_time=False``): the text speaks of the spectrum of the
            step Jacobian, a property of the step map; (2) γ's sequence has the scoring batch's
            length T and width B and starts from a zero state (the text names neither a length,
            a count nor an initial state); (3) the text divides by |γ| without a guard; we keep
            spectrumkit's relative floor 1e-3 (NOTE [γ normalization]), which only acts on the
            entries whose Monte-Carlo γ is within 1e-3 of the mean |γ|.
``authors`` the authors' code (``docs/authors-code.md`` §3–§5): χ_u = mean (J_tᵀ1)²
            (``transpose``) of the real batch of 64, differentiated through the whole unroll
            (``through_time=True``), 0.9^u per horizon with |·| taken per horizon then summed,
            U = 4; γ = |∂χ̃/∂θ| with χ̃ the mean (J̃ᵀ1)² of the 5th step of 100 noise sequences
            from s̃_0 = 1 + N(0, 0.1²) with inputs N(0, 0.1²), the gradient through all 5 steps
            (``gamma_objective="chi"``, ``gamma_readout="last"``); divided with no floor
            (``gamma_floor=0``); no balancing; masks global top-K (the trial's ``scope``).
            Regime (§1, §2, §6, §7): the reset-before-product GRU (``gru_cho``) with the authors'
            N(0, 0.07²) kernel and +0.1 on every pre-activation, pixels / (10·255) ∈ [0, 0.1]
            (``data.scale = "paper"``), and their trained network: the z/candidate block swap,
            zero trainable biases and no +0.1 (``pipeline = "authors"``). Their data split (§7)
            applies only when the full MNIST is given (``--data-root``): the 60,000 training
            digits plus the first 3,000 test digits train, the other 7,000 validate, and there is
            no test split (``data.split_rule = "authors"``, NOTE [The authors' split] in
            :mod:`spectrumkit.data`; refused on the bundled 10k digits, so it is not in the
            regime's table and a trial sets it beside ``--data-root``).
``chi-gamma`` the DEFAULT (chosen by the recipe-ablation study, README): the paper's score
            (``ones``, constant states, no discount, U = 4) divided by the authors' γ of §4 (5
            steps, 100 sequences, state 1 + N(0, 0.1²), inputs N(0, 0.1²), γ = |∂χ̃/∂θ| of the
            last step, where χ̃ is the score's own χ, here mean ‖J̃ 1‖²), with no floor.

A recipe's values are frozen under its name: a study trial's key holds the recipe's name
(NOTE [What the key covers]), so changing a recipe's values means a new name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .._init_spec import AUTHORS_GRU_INIT
from ..choices import RECIPE_NAMES, RecipeName

__all__ = ["DEFAULT_RECIPE", "RECIPES", "Recipe", "recipe_table"]


@dataclass(frozen=True)
class Recipe:
    """One named recipe: the jacobian score's options and the regime (trial fields) it assumes."""

    name: str
    summary: str
    score: Mapping[str, Any]
    regime: Mapping[str, Any]


def _recipe(name: str, summary: str, score: dict[str, Any], regime: dict[str, Any]) -> Recipe:
    return Recipe(name, summary, MappingProxyType(dict(score)), MappingProxyType(dict(regime)))


_PAPER_CHI = {"horizon": 4, "estimator": "ones", "through_time": False, "discount": 1.0,
              "batch_size": 64, "normalize": "gamma", "balance": "none"}
_BATCH_GAMMA = {"gamma_inputs": "gaussian", "gamma_state": "zero", "gamma_steps": None,
                "gamma_sequences": None, "gamma_objective": "hidden", "gamma_floor": 1e-3}
_AUTHORS_GAMMA = {"gamma_inputs": "gaussian", "gamma_state": "authors", "gamma_steps": 5,
                  "gamma_sequences": 100, "gamma_readout": "last", "gamma_objective": "chi",
                  "gamma_floor": 0.0}
_PLAIN = {"cell": "gru", "init": "glorot", "data.scale": "unit", "pipeline": "plain"}

#: THE table of recipes (NOTE [Recipes]); every other place reads it.
RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in (
    _recipe("legacy", "spectrumkit's first defaults: paper's χ, γ summed over the batch's T steps",
            {**_PAPER_CHI, **_BATCH_GAMMA, "gamma_readout": "sum"}, _PLAIN),
    _recipe("paper", "the paper's text as read here (γ from the last step only)",
            {**_PAPER_CHI, **_BATCH_GAMMA, "gamma_readout": "last"}, _PLAIN),
    _recipe("authors", "the authors' code, docs/authors-code.md §3-§5 (regime §1, §2, §6, §7)",
            {"horizon": 4, "estimator": "transpose", "through_time": True, "discount": 0.9,
             "batch_size": 64, "normalize": "gamma", "balance": "none", **_AUTHORS_GAMMA},
            {"cell": "gru_cho", "init": AUTHORS_GRU_INIT, "data.scale": "paper",
             "pipeline": "authors"}),
    _recipe("chi-gamma", "the paper's χ divided by the authors' γ of §4 (no floor)",
            {**_PAPER_CHI, **_AUTHORS_GAMMA}, _PLAIN),
)})
# the recipes' names are a set of choices (choices.RecipeName, the type of the ``recipe`` option):
# the table and that set must name the same recipes, in the same order
if tuple(RECIPES) != RECIPE_NAMES:
    raise ImportError(f"spectrumkit.scores.recipes: expected the recipes {RECIPE_NAMES} of "
                      f"choices.RecipeName, got {tuple(RECIPES)}")

#: The recipe ``compute_scores("jacobian", ...)`` uses when none is given: chosen by the
#: recipe-ablation study (README, "The recipe ablation"): among the score recipes, in
#: spectrumkit's default regime, the authors' γ of §4 is the ingredient that helps most.
DEFAULT_RECIPE: RecipeName = "chi-gamma"


def _fmt(v: Any) -> str:
    return "batch" if v is None else repr(v) if isinstance(v, str) else f"{v}"


def recipe_table() -> str:
    """The recipes as a Markdown table, option by option (the CLI and README print this).

    >>> print(recipe_table().splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    | ingredient | legacy | paper | authors | chi-gamma |
    """
    names = list(RECIPES)
    rows = list(dict.fromkeys(k for r in RECIPES.values() for k in r.score))
    regime = list(dict.fromkeys(k for r in RECIPES.values() for k in r.regime))
    lines = ["| ingredient | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for k in rows:
        lines.append(f"| {k} | " + " | ".join(_fmt(RECIPES[n].score[k]) for n in names)
                     + " |")
    for k in regime:
        lines.append(f"| (trial) {k} | "
                     + " | ".join(_fmt(RECIPES[n].regime.get(k, "")) for n in names) + " |")
    return "\n".join(lines)
