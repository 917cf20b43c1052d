r"""Trial configs and their keys.

A *trial* is one pruned-and-trained network: data → model → scores → mask → training → metrics.
Its :class:`TrialConfig` is a frozen pydantic model that refuses unknown fields; its *key* is

    key = SHA-256( canonical JSON of {"schema_version": SCHEMA_VERSION, "config": config,
                                      "data": data identity} )

where canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"))`` of
``config.model_dump(mode="json")``. The key names the result file ``trials/<key>.json``.

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

NOTE [Canonical configs]
Options that do not apply to a method are reset to ``None`` before the key is taken (``horizon``
for ``snip``, ``normalize`` for ``random``, ``sparsity`` for ``dense``...), and the defaults that
do apply are written out (``jacobian`` gets ``normalize="gamma"``, ``horizon=4``,
``estimator="ones"`` and ``through_time=False``, the defaults of :mod:`spectrumkit.scores`). So
a grid ``method × normalize`` holds one ``random`` trial, not two identical ones, and a key never
depends on a default that might change later. ``jacobian`` also gets its ``recipe`` written out
(the default recipe's name when none is given), and its four fields above come from that recipe;
other methods get ``recipe=None``, so identical regimes share one ``random`` trial whatever recipe
a study row names; likewise ``score_options`` that only other methods take are dropped. A
recipe's values are frozen under its name (NOTE [Recipes]).
``block_swap`` is written out (True under ``pipeline="authors"``); ``dense`` and ``l2`` get
``pipeline="plain"``, ``block_swap=False``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt,
                      ValidationError, field_validator, model_serializer, model_validator)

from .. import cells as _cells
from .. import choices as _choices
from ..errors import SpectrumkitError

__all__ = ["SCHEMA_VERSION", "TrialConfig", "trial_key", "canonical_json", "RECORDS", "METHODS",
           "BUILTIN_TRIALS", "pydantic_message", "DATA_IDENTITY_FIELDS", "TRIAL_METRICS"]

SCHEMA_VERSION = 2  # 2: the data identity entered the key and the result (issue 12)

METHODS = ("jacobian", "snip", "foresight", "magnitude", "random", "synflow", "dense", "l2")
RECORDS = _choices.RECORDS
TASKS = ("seq-mnist", "wikitext", "adding", "copy", "wikitext-103", "1b")
_WORD_TASKS = ("wikitext", "wikitext-103", "1b")  # word-level corpora: embed_size, softmax_samples

#: Built-in trial functions by name; any other ``trial`` value must be an import path
#: ``"package.module:function"`` (how user code, and the infrastructure tests, plug in).
BUILTIN_TRIALS = {"prune-train": "spectrumkit.study.trial:run_trial"}

_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
Scalar = Union[bool, int, float, str]

_GAMMA_METHODS = ("jacobian", "snip", "foresight")   # methods that take normalize=
_SPECTRUM_RECORDS = ("sv_hist", "spectrum_steps", "lyapunov")


class TrialConfig(BaseModel):
    r"""Everything that determines one trial's result (NOTE [What the key covers]).

    Data: ``task`` and ``data`` (options passed to :func:`spectrumkit.data.load_task`).
    Model: ``cell``, ``hidden_size`` (N), ``embed_size`` (language models), ``init``,
    ``softmax_samples`` (word-level language models: a sampled softmax with S candidates in
    training; None = full).
    Pruning: ``method`` (``dense`` = no mask; ``l2`` = the paper's iterative magnitude
    prune-retrain baseline, pruning every ``l2_stage_steps`` steps), ``sparsity`` (K = round((1 - sparsity)·P) kept),
    ``scope``, ``include_bias``, ``normalize``, ``horizon`` (U), ``estimator``, ``through_time``,
    ``score_batch`` (the minibatch the scores see), ``score_options`` (any further option of
    :func:`spectrumkit.scores.compute_scores`), ``score_repeats`` (timing: the best of k runs),
    ``recipe`` (jacobian: a named recipe, NOTE [Recipes]; its values fill ``normalize``,
    ``horizon``, ``estimator`` and ``through_time`` when they are not given).
    The authors' pipeline (AUTHORS_CODE.md §6): ``pipeline="authors"`` trains the pruned GRU as
    their code does: zero trainable biases, no +0.1 (``bias_hh`` held at 0, one bias per
    pre-activation) and, with ``block_swap`` (its default there), the z/candidate blocks and
    masks swapped (:func:`spectrumkit.interop.authors_trained_gru`). ``block_swap=True`` alone
    swaps the blocks and keeps the biases.
    Training: exactly one of ``epochs`` / ``steps`` (a budget in optimizer steps, as the paper
    counts; 0 = no training, evaluate at init),
    ``batch_size``, ``lr``, ``optimizer``, ``clip``, ``eval_every``.
    Records: ``record`` ⊆ anatomy, connection_map, sv_hist, spectrum_steps, lyapunov, with
    ``spectrum_batch`` sequences, ``hist_bins`` bins and ``lyapunov_k`` exponents;
    ``spectrum_method="lanczos"`` computes sv_hist and spectrum_steps without forming J
    (:mod:`spectrumkit.matfree`; None, the default, is the dense SVD and stays out of the key).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    trial: str = "prune-train"
    seed: NonNegativeInt = 0
    # data
    task: Literal["seq-mnist", "wikitext", "adding", "copy", "wikitext-103", "1b"] = "seq-mnist"
    data: dict[str, Scalar] = Field(default_factory=dict)
    # model
    cell: str = "gru"
    hidden_size: PositiveInt = 400
    embed_size: PositiveInt | None = None
    softmax_samples: PositiveInt | None = None  # None = full softmax (NOTE [Sampled softmax])
    init: str = "glorot"
    # pruning
    method: Literal["jacobian", "snip", "foresight", "magnitude", "random", "synflow",
                    "dense", "l2"] = "jacobian"
    sparsity: float = Field(0.95, ge=0.0, lt=1.0)
    scope: Literal["global", "per_tensor"] = "global"
    include_bias: bool = False
    normalize: Literal["gamma", "none"] | None = None
    horizon: PositiveInt | Literal["all"] | None = None
    estimator: Literal["ones", "transpose", "frobenius", "hutchinson"] | None = None
    through_time: bool | None = None
    score_batch: PositiveInt = 64
    score_options: dict[str, Scalar] = Field(default_factory=dict)
    score_repeats: PositiveInt = 1
    l2_stage_steps: PositiveInt | None = None
    # issue 10: the jacobian score's recipe and the authors' training pipeline (NOTE [Recipes])
    recipe: str | None = None
    pipeline: Literal["plain", "authors"] = "plain"
    block_swap: bool | None = None
    # training
    epochs: NonNegativeInt | None = None
    steps: NonNegativeInt | None = None
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    clip: PositiveFloat | None = None
    eval_every: PositiveInt | None = None
    # what to record
    record: tuple[_choices.Record, ...] = ()
    spectrum_batch: PositiveInt | None = None
    spectrum_method: Literal["dense", "lanczos"] | None = None
    hist_bins: PositiveInt | None = None
    lyapunov_k: PositiveInt | None = None

    @field_validator("trial")
    @classmethod
    def _trial_known(cls, v: str) -> str:
        if v not in BUILTIN_TRIALS and not _IMPORT_PATH.fullmatch(v):
            raise ValueError(f"expected one of {', '.join(BUILTIN_TRIALS)} or an import path "
                             f"'package.module:function', got {v!r}")
        return v

    @field_validator("cell")
    @classmethod
    def _cell_known(cls, v: str) -> str:
        from ..cells import available
        if v not in available():
            raise ValueError(f"expected one of {', '.join(available())}, got {v!r}")
        return v

    @field_validator("init")
    @classmethod
    def _init_parses(cls, v: str) -> str:
        from ..init import _parse_spec
        try:
            _parse_spec(v, None)
        except SpectrumkitError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("recipe")
    @classmethod
    def _recipe_known(cls, v: str | None) -> str | None:
        from ..scores.recipes import RECIPES
        if v is not None and v not in RECIPES:
            raise ValueError(f"expected one of {', '.join(RECIPES)}, got {v!r}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, values: Any) -> Any:
        """NOTE [Canonical configs]: drop options a method ignores, write out its defaults."""
        if not isinstance(values, dict):
            return values
        v = dict(values)
        method = v.get("method", "jacobian")
        if method == "jacobian":
            from ..scores.recipes import DEFAULT_RECIPE, RECIPES
            v["recipe"] = DEFAULT_RECIPE if v.get("recipe") is None else v["recipe"]
            r = RECIPES.get(v["recipe"]) if isinstance(v["recipe"], str) else None
            for k in ("normalize", "horizon", "estimator", "through_time"):
                v[k] = (r.score[k] if r is not None else None) if v.get(k) is None else v[k]
        else:
            for k in ("horizon", "estimator", "through_time", "recipe"):
                v[k] = None
            gets = method in _GAMMA_METHODS
            v["normalize"] = ("none" if v.get("normalize") is None else v["normalize"]) if gets else None
        so = v.get("score_options")
        if isinstance(so, dict) and so:  # drop options only OTHER score methods take
            from ..scores.options import OPTIONS as _SCORE_OPTIONS
            mine = _SCORE_OPTIONS.get(method, {})
            known = {k for o in _SCORE_OPTIONS.values() for k in o}
            v["score_options"] = {k: x for k, x in so.items() if k in mine or k not in known}
        if method in ("dense", "l2"):
            v["scope"], v["score_options"], v["score_repeats"] = "global", {}, 1
        if method == "dense":
            v["sparsity"] = 0.0
        if method in ("dense", "l2"):  # the authors' pipeline acts on a mask scored at init
            v["pipeline"], v["block_swap"] = "plain", False
        if v.get("block_swap") is None:
            v["block_swap"] = v.get("pipeline", "plain") == "authors"
        if method != "l2":
            v["l2_stage_steps"] = None
        rec = v.get("record") or ()
        if isinstance(rec, (list, tuple)):
            rec = tuple(r for r in RECORDS if r in rec) + tuple(r for r in rec if r not in RECORDS)
            v["record"] = rec
        spectral = any(r in rec for r in _SPECTRUM_RECORDS)
        def given(k: str, d: Any) -> Any:
            return d if v.get(k) is None else v[k]
        v["spectrum_batch"] = given("spectrum_batch", 64) if spectral else None
        sm = v.get("spectrum_method")
        v["spectrum_method"] = "lanczos" if sm == "lanczos" and spectral else (
            None if sm in (None, "dense") or not spectral else sm)
        v["hist_bins"] = given("hist_bins", 50) if "sv_hist" in rec else None
        v["lyapunov_k"] = v.get("lyapunov_k") if "lyapunov" in rec else None
        if v.get("task", "seq-mnist") not in _WORD_TASKS:
            v["embed_size"] = None
            v["softmax_samples"] = None
        return v

    @model_validator(mode="after")
    def _schedule(self) -> "TrialConfig":
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("expected exactly one of epochs / steps, got "
                             + ("both" if self.epochs is not None else "neither"))
        if self.method == "l2" and (self.l2_stage_steps is None
                                    or not (self.epochs or self.steps)):
            raise ValueError("expected l2_stage_steps and some training for method 'l2', got "
                             f"l2_stage_steps={self.l2_stage_steps}, epochs={self.epochs}, "
                             f"steps={self.steps}")
        if (self.pipeline == "authors" or self.block_swap) and self.cell not in ("gru", "gru_cho"):
            raise ValueError("expected cell 'gru_cho' or 'gru' with pipeline='authors' or "
                             f"block_swap=True (the z/candidate swap), got cell {self.cell!r}")
        if len(set(self.record)) != len(self.record):
            raise ValueError(f"expected record entries without repeats, got {list(self.record)}")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_spectrum_method(self, handler: Any) -> Any:
        """``spectrum_method`` (added later) is left out while None (dense, the old behaviour),
        so every config written before it keeps its dump, hence its key."""
        out = handler(self)
        if isinstance(out, dict) and out.get("spectrum_method", 0) is None:
            del out["spectrum_method"]
        return out

    @property
    def density(self) -> float:
        """1 - sparsity: the kept fraction."""
        return 1.0 - self.sparsity

    @property
    def target(self) -> str:
        """The import path ``module:function`` of the trial function."""
        return BUILTIN_TRIALS.get(self.trial, self.trial)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, ASCII, no NaN: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


#: The fields of a data identity that enter the key (NOTE [What the key covers]).
DATA_IDENTITY_FIELDS = ("source", "fingerprint")

#: The metrics each built-in trial reports: a study's ``[report]`` metric must be one of them.
TRIAL_METRICS = {"prune-train": (
    "density", "kept", "prunable", "score_seconds", "ir_ratio", "gate_imbalance", "dead_units",
    "diverged_at_step", "steps", "epochs", "train_seconds", "train_loss", "sv_mean_init",
    "sv_mean_trained", "val_loss", "val_error_pct", "val_ppl", "val_mse", "test_loss",
    "test_error_pct", "test_ppl", "test_mse",
    # each gate's share of the kept entries, for the gates of every built-in cell
    *sorted({f"share_{g}" for c in _cells.available() for g in _cells.get(c).gates}))}


def trial_key(config: TrialConfig, data: dict[str, Any] | None = None) -> str:
    r"""The trial's key: SHA-256 hex of the canonical JSON of the config, the data identity and
    the schema version.

    ``data`` is the identity of the data the trial reads (:func:`spectrumkit.data.data_identity`;
    only its ``source`` and ``fingerprint`` count); None means the bundled data of the config's
    task.

    >>> a = TrialConfig(seed=0, epochs=1, method="random", normalize="gamma")
    >>> b = TrialConfig(seed=0, epochs=1, method="random", horizon=8)
    >>> trial_key(a) == trial_key(b)         # both options are ignored by 'random'
    True
    >>> trial_key(a) == trial_key(TrialConfig(seed=1, epochs=1, method="random"))
    False
    """
    if data is None:
        from ..data import data_identity
        data = data_identity(config.task, None)
    ident = {k: data.get(k) for k in DATA_IDENTITY_FIELDS}
    payload = {"schema_version": SCHEMA_VERSION, "config": config.model_dump(mode="json"),
               "data": ident}
    return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()


def pydantic_message(fn: str, err: ValidationError, where: str = "") -> str:
    """One line ``fn: expected FIELD CONSTRAINT[ where], got VALUE`` from pydantic's first error."""
    e = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in e.get("loc", ()) if not isinstance(p, int)) or "value"
    msg = " ".join(str(e.get("msg", "")).split())
    where = f" {where}" if where else ""
    got = repr(e.get("input"))
    if e.get("type") == "value_error":
        inner = msg.removeprefix("Value error, ")
        # our own validators already speak 'field: expected X, got Y'
        m = re.match(r"(?:\w+: )?expected (.*), got (.*)$", inner)
        if m:
            what = f"{loc} to be {m.group(1)}" if loc != "value" else m.group(1)
            return f"{fn}: expected {what}{where}, got {m.group(2)}"
        return f"{fn}: expected a valid {loc}{where}, got {got} ({inner})"
    if e.get("type") == "extra_forbidden":
        return f"{fn}: expected known keys{where}, got unknown key {loc!r}"
    if e.get("type") == "missing":
        return f"{fn}: expected {loc} to be given{where}, got nothing"
    constraint = msg.removeprefix("Input should be ").removeprefix("input should be ")
    if constraint == msg:
        constraint = msg[:1].lower() + msg[1:]
    return f"{fn}: expected {loc} {constraint}{where}, got {got}"
