r"""Every closed set of choices in spectrumkit, defined once.

Each set is a ``Literal`` alias (what pydantic models and type hints use) and the tuple of its
values, in the order the docs list them (what ``click.Choice`` and the error messages use). Every
other module imports them from here; no module spells a set out again.

>>> SCORE_METHODS
('jacobian', 'snip', 'foresight', 'magnitude', 'random', 'synflow')
>>> TRAIN_METHODS[:2]
('dense', 'l2')
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "BALANCES", "Balance", "ESTIMATORS", "Estimator", "EXECUTORS", "Executor", "FIGURES", "Figure",
    "GAMMA_INPUTS", "GAMMA_OBJECTIVES", "GAMMA_READOUTS", "GAMMA_STATES", "GammaInputs",
    "GammaObjective", "GammaReadout", "GammaState", "INIT_SCHEMES", "InitScheme", "NORMALIZATIONS",
    "JACOBIAN_BLOCKS", "JACOBIAN_METHODS", "JacobianBlock", "JacobianMethod",
    "Normalization", "OPTIMIZERS", "Optimizer", "PIPELINES", "Pipeline", "RECIPE_NAMES", "RECORDS",
    "Record", "RecipeName", "SCOPES", "SCORE_METHODS", "SPECTRUM_METHODS", "STUDY_DEVICES",
    "ScoreMethod", "Scope", "SpectrumMethod", "StudyDevice", "TASKS", "TRAIN_METHODS", "Task",
    "TrainMethod", "WORD_TASKS",
]

#: Pruning-at-initialization scores (:func:`spectrumkit.scores.compute_scores`).
ScoreMethod = Literal["jacobian", "snip", "foresight", "magnitude", "random", "synflow"]
SCORE_METHODS: tuple[str, ...] = get_args(ScoreMethod)

#: What a trained network is pruned by: no mask, the paper's iterative L2 baseline, or a score.
TrainMethod = Literal["dense", "l2", "jacobian", "snip", "foresight", "magnitude", "random",
                      "synflow"]
TRAIN_METHODS: tuple[str, ...] = get_args(TrainMethod)

#: Engines of :func:`spectrumkit.jacobians.step_jacobians` (NOTE [Jacobian convention]).
JacobianMethod = Literal["auto", "closed_form", "jacrev", "jacfwd"]
JACOBIAN_METHODS: tuple[str, ...] = get_args(JacobianMethod)

#: What a Jacobian routine returns: the full (S, S) Jacobian or its h→h block (N, N).
JacobianBlock = Literal["full", "hh"]
JACOBIAN_BLOCKS: tuple[str, ...] = get_args(JacobianBlock)

#: χ estimators of the Jacobian score (NOTE [χ estimators] in spectra/chi_estimators.py).
Estimator = Literal["ones", "transpose", "frobenius", "hutchinson"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)

#: Division by γ (``gamma``) or not (``none``).
Normalization = Literal["gamma", "none"]
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)

#: γ's inputs, initial state, readout and objective (NOTE [γ normalization], [γ objective]).
GammaInputs = Literal["gaussian", "data", "authors"]
GAMMA_INPUTS: tuple[str, ...] = get_args(GammaInputs)
GammaState = Literal["zero", "authors"]
GAMMA_STATES: tuple[str, ...] = get_args(GammaState)
GammaReadout = Literal["sum", "last"]
GAMMA_READOUTS: tuple[str, ...] = get_args(GammaReadout)
GammaObjective = Literal["hidden", "chi"]
GAMMA_OBJECTIVES: tuple[str, ...] = get_args(GammaObjective)

#: Score rescaling by group (NOTE [Balance]).
Balance = Literal["none", "gate", "block"]
BALANCES: tuple[str, ...] = get_args(Balance)

#: Named recipes of the Jacobian score; the table itself is ``spectrumkit.scores.RECIPES``.
RecipeName = Literal["legacy", "paper", "authors", "chi-gamma"]
RECIPE_NAMES: tuple[str, ...] = get_args(RecipeName)

#: Mask scopes: one global top-K, or top-K within every tensor.
Scope = Literal["global", "per_tensor"]
SCOPES: tuple[str, ...] = get_args(Scope)

#: Tasks of :func:`spectrumkit.data.load_task`; the word-level ones take embed/softmax options.
Task = Literal["seq-mnist", "wikitext", "adding", "copy", "wikitext-103", "1b"]
TASKS: tuple[str, ...] = get_args(Task)
WORD_TASKS: tuple[str, ...] = ("wikitext", "wikitext-103", "1b")

#: The named initialization schemes (the grammar adds ``normal:STD``, ``uniform:A,B``,
#: ``constant:C`` and block overrides; NOTE in init.py).
InitScheme = Literal["glorot", "glorot_uniform", "he", "orthogonal", "torch", "zero"]
INIT_SCHEMES: tuple[str, ...] = get_args(InitScheme)

#: Optimizers of :func:`spectrumkit.training.train`.
Optimizer = Literal["adam", "sgd"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)

#: Training pipelines of a study trial (NOTE [The authors' pipeline]).
Pipeline = Literal["plain", "authors"]
PIPELINES: tuple[str, ...] = get_args(Pipeline)

#: What a study trial may record (``mask``: the mask trained with, bit for bit), and how its
#: spectra are computed.
Record = Literal["anatomy", "connection_map", "sv_hist", "spectrum_steps", "lyapunov", "mask"]
RECORDS: tuple[str, ...] = get_args(Record)
SpectrumMethod = Literal["dense", "lanczos"]
SPECTRUM_METHODS: tuple[str, ...] = get_args(SpectrumMethod)

#: Study executors and the devices a study may ask for.
Executor = Literal["local", "process", "ray", "slurm"]
EXECUTORS: tuple[str, ...] = get_args(Executor)
StudyDevice = Literal["auto", "cpu", "cuda"]
STUDY_DEVICES: tuple[str, ...] = get_args(StudyDevice)

#: The figures a study can render.
Figure = Literal["anatomy", "sv_hist", "connection_maps", "curves", "lyapunov", "spectrum_steps"]
FIGURES: tuple[str, ...] = get_args(Figure)
