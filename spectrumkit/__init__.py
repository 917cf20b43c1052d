"""spectrumkit: temporal Jacobians, singular-value spectra and pruning at initialization for RNNs.

The public face, grouped by theme. See ``DESIGN.md`` of the project for the data flow.
"""

from importlib.metadata import PackageNotFoundError, version

# errors
from .errors import SpectrumkitError

# cells, initialization, interop
from .cells import Cell, TensorLayout, available, count_params, entry_labels, get, make_cell
from .init import init_params, parse_scheme
from .interop import from_torch, to_torch

# sequences and Jacobians
from .unroll import unroll
from .jacobians import jvp_step, reference_jacobian, vjp_step

# spectra
from .spectra import CHI_ESTIMATORS, chi_step

# models
from .models import LanguageModel, SequenceClassifier

# studies
from .study import (Study, TrialConfig, collect, list_studies, load_study, run_study, summarize,
                    trial_key)

try:
    __version__ = version("spectrumkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = [
    # errors
    "SpectrumkitError",
    # cells, initialization, interop
    "Cell", "TensorLayout", "available", "count_params", "entry_labels", "get", "make_cell",
    "init_params", "parse_scheme", "from_torch", "to_torch",
    # sequences and Jacobians
    "unroll", "jvp_step", "vjp_step", "reference_jacobian",
    # spectra
    "CHI_ESTIMATORS", "chi_step",
    # models
    "SequenceClassifier", "LanguageModel",
    # studies
    "Study", "TrialConfig", "collect", "list_studies", "load_study", "run_study", "summarize",
    "trial_key",
]
