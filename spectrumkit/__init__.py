"""spectrumkit: temporal Jacobians, singular-value spectra and pruning at initialization for RNNs.

The public face, grouped by theme. See ``docs/design.md`` for the data flow.
"""

from importlib.metadata import PackageNotFoundError, version

# first: while the CLI imports, Ctrl-C is one line (NOTE [Aborts]; a library import: nothing)
from . import _signals  # noqa: F401

# errors
from .errors import SpectrumkitError

# isort: split
# cells, initialization, interop
from .cells import Cell, TensorLayout, available, count_params, entry_labels, get, make_cell
from .init import AUTHORS_GRU_INIT, init_params, parse_scheme
from .interop import authors_gru_params, authors_trained_gru, from_torch, to_torch

# isort: split
# sequences and per-step Jacobians
from .jacobians import (
    JacobianChunk,
    has_closed_form,
    iter_step_jacobians,
    jvp_step,
    reference_jacobian,
    step_jacobians,
    vjp_step,
)
from .operators import step_operator
from .unroll import unroll

# isort: split
# spectra, χ and Lyapunov exponents
from .matfree import (
    ExtremeSingularValues,
    LanczosOptions,
    SpectralDensity,
    extreme_singular_values,
    lanczos_spectrum,
)
from .spectra import (
    CHI_ESTIMATORS,
    Histogram,
    Spectrum,
    chi,
    chi_step,
    effective_rank,
    histogram,
    lyapunov_exponents,
    reference_singular_values,
    singular_values,
    spectrum,
    spectrum_summary,
)

# isort: split
# models and the model contract
from .models import (
    LanguageModel,
    SequenceClassifier,
    SequenceRegressor,
    log_uniform_probs,
    log_uniform_sample,
    sampled_softmax_loss,
)
from .protocols import RecurrentModel, check_model

# isort: split
# pruning at initialization: scores, masks, anatomy
from .anatomy import anatomy_summary, connection_map, mask_anatomy
from .masks import (
    apply_mask,
    check_mask,
    density_from_sparsity,
    load_masks,
    save_masks,
    to_torch_prune,
    topk_mask,
)
from .scores import (
    DEFAULT_RECIPE,
    METHODS,
    OPTION_MODELS,
    RECIPES,
    compute_gamma,
    compute_scores,
    options_for,
    recipe_table,
)

# isort: split
# data
from .corpora import StreamedTokens, write_1b_sample
from .data import (
    DEFAULT_BPTT,
    SequenceDataset,
    TaskData,
    TokenStream,
    WikiText,
    adding_problem,
    bptt_batches,
    bptt_window,
    bptt_window_count,
    copy_task,
    data_identity,
    load_task,
    sample_batch,
    seq_mnist,
    wikitext,
)

# isort: split
# training (the module is ``spectrumkit.training``; ``spectrumkit.train`` is the function)
from .evaluation import evaluate, make_model, resolve_device
from .pipeline import PipelineResult, pack_mask, run_pipeline, unpack_mask
from .training import TrainResult, train, train_l2_iterative

# isort: split
# studies
from .study import (
    Study,
    TrialConfig,
    collect,
    list_studies,
    load_study,
    run_study,
    trial_key,
)

# figures and tables (imported on first use: matplotlib is slow to import; see __getattr__ below)
_FIGURES_EXPORTS = ("render", "style", "save_figure", "sv_histogram", "results_table",
                    "SINGLE_COLUMN", "DOUBLE_COLUMN", "summarize")

try:
    __version__ = version("spectrumkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = [
    # errors
    "SpectrumkitError",
    # cells, initialization, interop
    "Cell", "TensorLayout", "available", "count_params", "entry_labels", "get", "make_cell",
    "init_params", "parse_scheme", "from_torch", "to_torch", "AUTHORS_GRU_INIT",
    "authors_gru_params", "authors_trained_gru",
    # sequences and per-step Jacobians
    "unroll", "step_jacobians", "iter_step_jacobians", "JacobianChunk", "has_closed_form",
    "jvp_step", "vjp_step", "reference_jacobian", "step_operator",
    # spectra, χ and Lyapunov exponents
    "singular_values", "reference_singular_values", "spectrum_summary", "effective_rank",
    "histogram", "Histogram", "spectrum", "Spectrum", "CHI_ESTIMATORS", "chi", "chi_step",
    "lyapunov_exponents",
    "extreme_singular_values", "lanczos_spectrum", "LanczosOptions", "ExtremeSingularValues",
    "SpectralDensity",
    # models and the model contract
    "SequenceClassifier", "LanguageModel", "SequenceRegressor", "sampled_softmax_loss",
    "log_uniform_probs", "log_uniform_sample", "RecurrentModel", "check_model",
    # pruning at initialization: scores, masks, anatomy
    "METHODS", "compute_scores", "compute_gamma", "topk_mask", "density_from_sparsity",
    "apply_mask", "to_torch_prune", "save_masks", "load_masks", "mask_anatomy", "anatomy_summary",
    "connection_map", "RECIPES", "DEFAULT_RECIPE", "recipe_table", "OPTION_MODELS", "options_for",
    "check_mask",
    # data
    "SequenceDataset", "TaskData", "TokenStream", "WikiText", "adding_problem", "bptt_batches",
    "copy_task", "load_task", "sample_batch", "seq_mnist", "wikitext", "StreamedTokens",
    "write_1b_sample",
    "data_identity",
    "DEFAULT_BPTT", "bptt_window", "bptt_window_count",
    # training
    "evaluate", "make_model", "resolve_device", "TrainResult", "train", "train_l2_iterative",
    "run_pipeline", "PipelineResult", "pack_mask", "unpack_mask",
    # studies
    "Study", "TrialConfig", "collect", "list_studies", "load_study", "run_study",
    "trial_key",
    # figures and tables (lazy)
    *_FIGURES_EXPORTS,
]


def __getattr__(name: str) -> object:
    """Lazy public names (PEP 562): ``spectrumkit.render`` etc. import ``spectrumkit.figures``."""
    if name in _FIGURES_EXPORTS:
        from . import figures

        return getattr(figures, name)
    raise AttributeError(f"module 'spectrumkit' has no attribute {name!r}")
