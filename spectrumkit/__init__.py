"""spectrumkit: temporal Jacobians, singular-value spectra and pruning at initialization for RNNs.

The public face holds the names of the main workflow, grouped by stage (cells → Jacobians →
spectra → scores → masks → models → data → training → the run and its pipeline → studies). Every
other public name lives in its module (``spectrumkit.spectra.histogram``,
``spectrumkit.masks.density_from_sparsity``, ...); see ``docs/design.md`` for the data flow.

NOTE [A lazy public face]
``import spectrumkit`` imports no torch: each name below is imported from its module on first use
(PEP 562 ``__getattr__``). ``spectrumkit --help``, ``spectrumkit study list`` and
``spectrumkit study show`` therefore start in a fraction of a second, and a name's module is
loaded only by the code that needs it. Type checkers and documentation tools read the imports in
the ``TYPE_CHECKING`` block, which names the same modules as :data:`_EXPORTS`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# first: while the CLI imports, Ctrl-C is one line (NOTE [Aborts]; a library import: nothing)
from . import _signals  # noqa: F401
from ._version import VERSION

__version__ = VERSION

#: ``{public name: the module that defines it}``, in the order of the workflow.
_EXPORTS: dict[str, str] = {
    # errors
    "SpectrumkitError": "errors",
    # cells and their initialization
    "Cell": "cells", "make_cell": "cells", "init_params": "init",
    # sequences and per-step Jacobians
    "unroll": "_unroll", "step_jacobians": "jacobians", "step_operator": "operators",
    # spectra, χ and Lyapunov exponents
    "singular_values": "spectra", "spectrum": "spectra", "Spectrum": "spectra",
    "spectrum_summary": "spectra", "lanczos_spectrum": "spectra",
    "extreme_singular_values": "spectra", "chi": "spectra", "lyapunov_exponents": "spectra",
    # scores
    "METHODS": "scores", "compute_scores": "scores", "options_for": "scores",
    # masks
    "topk_mask": "masks", "apply_mask": "masks", "save_masks": "masks", "load_masks": "masks",
    "mask_anatomy": "anatomy", "to_torch_prune": "masks",
    # models and torch.nn
    "make_model": "evaluation", "check_model": "protocols", "to_torch": "interop",
    "from_torch": "interop",
    # data
    "load_task": "data", "TaskData": "data", "sample_batch": "data", "register_task": "data",
    # training
    "train": "training", "evaluate": "evaluation", "TrainResult": "training",
    "TrainingConfig": "config",
    # the run configuration and its pipeline
    "RunConfig": "config", "run_pipeline": "pipeline",
    # studies
    "load_study": "study.spec", "run_study": "study.runner",
}

__all__ = [  # the keys of _EXPORTS (a test checks), spelled out for linters
    "SpectrumkitError", "Cell", "make_cell", "init_params", "unroll", "step_jacobians",
    "step_operator", "singular_values", "spectrum", "Spectrum", "spectrum_summary",
    "lanczos_spectrum", "extreme_singular_values", "chi", "lyapunov_exponents", "METHODS",
    "compute_scores", "options_for", "topk_mask", "apply_mask", "save_masks", "load_masks",
    "mask_anatomy", "to_torch_prune", "make_model", "check_model", "to_torch", "from_torch",
    "load_task", "TaskData", "sample_batch", "register_task", "train", "evaluate", "TrainResult",
    "TrainingConfig", "RunConfig", "run_pipeline", "load_study", "run_study",
]

if TYPE_CHECKING:  # the same names, for type checkers and documentation tools
    from ._unroll import unroll
    from .anatomy import mask_anatomy
    from .cells import Cell, make_cell
    from .config import RunConfig, TrainingConfig
    from .data import TaskData, load_task, register_task, sample_batch
    from .errors import SpectrumkitError
    from .evaluation import evaluate, make_model
    from .init import init_params
    from .interop import from_torch, to_torch
    from .jacobians import step_jacobians
    from .masks import apply_mask, load_masks, save_masks, to_torch_prune, topk_mask
    from .operators import step_operator
    from .pipeline import run_pipeline
    from .protocols import check_model
    from .scores import METHODS, compute_scores, options_for
    from .spectra import (
        Spectrum,
        chi,
        extreme_singular_values,
        lanczos_spectrum,
        lyapunov_exponents,
        singular_values,
        spectrum,
        spectrum_summary,
    )
    from .study.runner import run_study
    from .study.spec import load_study
    from .training import TrainResult, train


def __getattr__(name: str) -> object:
    """Import a public name from its module on first use (NOTE [A lazy public face])."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spectrumkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
