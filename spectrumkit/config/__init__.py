r"""The run configuration: what one run is, typed, validated once, passed down unchanged.

:class:`RunConfig` (:mod:`spectrumkit.config.run`) holds the parts :class:`ModelConfig`,
:class:`DataConfig`, the score part (the method's options object), :class:`PruningConfig`,
:class:`TrainingConfig` and :class:`RecordsConfig` (:mod:`spectrumkit.config.parts`);
:func:`trial_key` names a run's result. ``spectrumkit train``'s flags and a study trial's reproduce
line are made from the same fields (:mod:`spectrumkit.config.flags`).
"""

from __future__ import annotations

from .messages import pydantic_message
from .parts import DataConfig, ModelConfig, PruningConfig, RecordsConfig, TrainingConfig
from .run import (
    BUILTIN_TRIALS,
    DATA_IDENTITY_FIELDS,
    FLAT_FIELDS,
    FLAT_SCORE_KEYS,
    SCHEMA_VERSION,
    RunConfig,
    canonical_json,
    flat_config,
    trial_key,
)
from .score import DenseOptions, L2Options

__all__ = ["BUILTIN_TRIALS", "DATA_IDENTITY_FIELDS", "FLAT_FIELDS", "FLAT_SCORE_KEYS",
           "SCHEMA_VERSION", "DataConfig", "DenseOptions", "L2Options", "ModelConfig",
           "PruningConfig", "RecordsConfig", "RunConfig", "TrainingConfig", "canonical_json",
           "flat_config", "pydantic_message", "trial_key"]
