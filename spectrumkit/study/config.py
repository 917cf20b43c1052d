r"""A study's trial configs and their keys: the run configuration of :mod:`spectrumkit.config`.

A *trial* is one pruned-and-trained network: data → model → scores → mask → training → metrics.
Its :class:`TrialConfig` is the :class:`~spectrumkit.config.RunConfig` (NOTE [Flat names],
[Canonical configs] in ``spectrumkit/config/run.py``); its *key* (:func:`trial_key`) names the
result file ``trials/<key>.json``.

NOTE [What the key covers]
Only what changes a trial's numbers is in the key: the config (data options, model, scores, mask,
optimizer, schedule, seed and what to record) and the identity of the data files the trial reads
(NOTE [Data identity] in :mod:`spectrumkit.data`: bundled, or a root's file fingerprint; schema 2).
Run options are not: the output folder, the executor, the number of workers, CPUs/GPUs per trial,
the device, and the data root's *path* (the same files elsewhere are the same data). So a study
started on a laptop can be resumed on a GPU or a Ray cluster and the finished trials are kept,
while a ``--data-root`` run never reuses a bundled-data result. The device and the data (identity,
root path, the loader's description) are recorded in every result (``env.device``, ``data``).
Bumping :data:`SCHEMA_VERSION` invalidates every key at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._cell_names import BUILTIN_CELLS, cell_sizes
from ..config import (
    BUILTIN_TRIALS,
    DATA_IDENTITY_FIELDS,
    FLAT_SCORE_KEYS,
    SCHEMA_VERSION,
    DenseOptions,
    L2Options,
    RunConfig,
    canonical_json,
    flat_config,
    pydantic_message,
    trial_key,
)
from ..errors import SpectrumkitError

__all__ = ["SCHEMA_VERSION", "TrialConfig", "trial_key", "canonical_json", "BUILTIN_TRIALS",
           "pydantic_message", "DATA_IDENTITY_FIELDS", "TRIAL_METRICS", "DenseOptions",
           "L2Options", "FLAT_SCORE_KEYS", "flat_config", "memory_terms"]

#: A study trial's config is the run configuration.
TrialConfig = RunConfig

#: The metrics each built-in trial reports: a study's ``[report]`` metric must be one of them.
TRIAL_METRICS = {"prune-train": (
    "density", "kept", "prunable", "score_seconds", "ir_ratio", "gate_imbalance", "dead_units",
    "kept_input", "kept_recurrent",  # the I/R ratio's counts (NOTE [Undefined values])
    "diverged_at_step", "steps", "epochs", "train_seconds", "train_loss", "sv_mean_init",
    "sv_mean_trained", "val_loss", "val_error_pct", "val_ppl", "val_mse", "test_loss",
    "test_error_pct", "test_ppl", "test_mse",
    # each gate's share of the kept entries, for the gates of every built-in cell
    *sorted({f"share_{g}" for gates, _, _ in BUILTIN_CELLS.values() for g in gates}))}


def memory_terms(c: TrialConfig, *, input_size: int = 1, heads: int = 0, seq_len: int = 1,
                 name: Mapping[str, str] | None = None) -> dict[str, int]:
    r"""The entries one trial needs at least, by the setting that drives each (NOTE [Memory
    terms] in ``spectrumkit/errors.py``): the model with its gradient and optimizer state
    (``hidden_size``), one training batch (``batch_size`` × T × (D + S)), one scoring batch
    (``score_batch``), γ's own batch (``score_options.gamma_steps`` × ``gamma_sequences``) and,
    for dense spectra, one step's Jacobians and their SVD's copy (2 × ``spectrum_batch`` × S²).

    ``input_size`` D, ``heads`` (the readout's parameters) and ``seq_len`` T are the data's where
    known (the defaults 1 and 0 keep a lower bound when they are not, as at a study's load).
    ``name`` maps a field to how the user wrote it (``{"hidden_size": "--hidden"}``).
    A cell that is not built in gives no terms: its own checks apply.
    """
    def n(field: str) -> str:
        return (name or {}).get(field, field)

    try:
        sizes = cell_sizes(c.cell, c.embed_size or input_size, c.hidden_size)
    except SpectrumkitError:
        return {}
    if sizes is None:
        return {}
    S, P = sizes
    D = c.embed_size or input_size
    copies = 4 if c.optimizer == "adam" else 2
    terms = {f"{n('hidden_size')} {c.hidden_size} (cell {c.cell}): a model, its gradient and "
             "its optimizer state": copies * (P + heads),
             f"{n('batch_size')} {c.batch_size}: a training batch's inputs and states":
                 c.batch_size * seq_len * (D + S),
             f"{n('score_batch')} {c.score_batch}: the scoring batch's inputs and states":
                 c.score_batch * seq_len * (D + S)}
    so = c.score_options or {}
    t, b = so.get("gamma_steps"), so.get("gamma_sequences")
    if isinstance(t, int) or isinstance(b, int):
        t = t if isinstance(t, int) else seq_len
        b = b if isinstance(b, int) else c.score_batch
        terms[f"{n('gamma_steps')} {t} and {n('gamma_sequences')} {b}: γ's batch"] = \
            t * b * (D + S)
    if c.spectrum_batch is not None and c.spectrum_method != "lanczos":
        # the dense spectra hold one step's Jacobians (spectrum_batch, S, S) and the SVD's copy
        terms[f"{n('spectrum_batch')} {c.spectrum_batch}: one step's Jacobians for the spectra"] = \
            2 * c.spectrum_batch * S * S
    return terms
