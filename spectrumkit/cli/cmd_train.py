"""`spectrumkit train`: prune at initialization (or not) and train, as a study trial does."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..choices import (
    OPTIMIZERS,
    PIPELINES,
    RECORDS,
    SCOPES,
    SPECTRUM_METHODS,
    TRAIN_METHODS,
    WORD_TASKS,
)
from . import main
from ._options import score_option_fields, score_option_flags
from .cmd_prune import list_recipes

if TYPE_CHECKING:
    from ..data import TaskData
    from ..pipeline import PipelineResult
    from ..study.config import TrialConfig

__all__ = ["config_from_params", "train_command"]

# NOTE [train command]
# The flags build a study trial's config (spectrumkit.study.config.TrialConfig: --data is its
# task, --data-option its data, --hidden its hidden_size, --stage-steps its l2_stage_steps,
# --score-option its normalize / horizon / estimator / through_time and score_options, every
# other flag the field of its name), and the command runs the same pipeline as a study trial
# (spectrumkit.pipeline.run_pipeline): --method dense trains the full model; l2 is the paper's
# iterative magnitude prune-retrain; every other method is a pruning-at-initialization score whose
# scoring batch and randomness come from sub_seed(--seed, "score-batch") and
# sub_seed(--seed, "scores") (NOTE [Trial randomness]), and the exact-K mask keeps
# round((1 - sparsity) · n) of the cell's weights, held exactly during training. So the command a
# study trial's log prints (train_command) trains that trial's mask bit for bit, and prints the
# trial's key (trial_key of the config and the data identity, as the study runner takes it).
# A flag the config would drop (one that does not apply to the method, the task or the records)
# is refused, never silently ignored (NOTE [Canonical configs]).

#: What a run writes in OUT: checked up front, and removed first by --no-resume.
_OUTPUTS = ("history.csv", "metrics.json", "mask.pt", "checkpoint/checkpoint.pt")

#: The score options that have no flag of their own here (``batch_size`` would clash with the
#: training batch's --batch-size; synflow's density is the trial's 1 - sparsity): they are given
#: as ``--score-option KEY=VALUE``.
_EXCLUDED = ("batch_size", "density")
#: The score option flags of `spectrumkit train` (one per option field of every score method,
#: NOTE [Option flags]); their parameters are named like the options.
_OPTION_FLAGS = tuple(score_option_fields(exclude=_EXCLUDED))
#: The flat config keys among the score options (NOTE [Canonical configs]); a given flag of one
#: of them is that key of the config, a given flag of any other option goes to score_options.
_FLAT = ("normalize", "horizon", "estimator", "through_time", "recipe")

#: Flat TrialConfig key (TrialConfig.input_keys() but ``score``) → the click parameter of
#: `spectrumkit train` that sets it. Every key but ``trial`` needs one (train_command refuses a
#: config with a key missing here).
_FIELD_PARAMS = {
    "seed": "seed", "task": "data_name", "data": "data_options", "cell": "cell",
    "hidden_size": "hidden", "embed_size": "embed_size", "softmax_samples": "softmax_samples",
    "init": "init_scheme", "method": "method", "sparsity": "sparsity", "scope": "scope",
    "include_bias": "include_bias", "score_batch": "score_batch",
    "score_options": "score_options", "score_repeats": "score_repeats",
    "l2_stage_steps": "stage_steps", "pipeline": "pipeline",
    "block_swap": "block_swap", "epochs": "epochs", "steps": "steps",
    "batch_size": "batch_size", "lr": "lr", "optimizer": "optimizer", "clip": "clip",
    "eval_every": "eval_every", "record": "record", "spectrum_batch": "spectrum_batch",
    "spectrum_method": "spectrum_method", "hist_bins": "hist_bins", "lyapunov_k": "lyapunov_k",
    **{f: f for f in _FLAT}}
#: The parameters :func:`_fields` reads in its own way.
_SPECIAL = ("data_options", "score_options", "record", *_FLAT)


def _split_option(text: str, hint: str) -> tuple[str, str]:
    """``KEY=VALUE`` → (KEY, VALUE), both stripped."""
    if "=" not in text:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint=hint)
    key, value = (t.strip() for t in text.split("=", 1))
    return key, value


def _cast(value: str) -> object:
    """VALUE read as int, float, ``true``/``false``, ``none`` or a string."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):  # e.g. sample=true for load_task("1b")
        return value.lower() == "true"
    return None if value.lower() == "none" else value


def _parse_option(text: str, hint: str = "--data-option") -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as int, float, ``true``/``false``, ``none`` or a string."""
    key, value = _split_option(text, hint)
    return key, _cast(value)


def _text(value: object) -> str:
    """The flag text that :func:`_cast` (or pydantic, for a config field) reads back as value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The flat TrialConfig keys the flags ask for (before the config's validation)."""
    fields = {f: params[p] for f, p in _FIELD_PARAMS.items() if p not in _SPECIAL}
    fields["data"] = dict(_parse_option(t) for t in params["data_options"])
    fields["record"] = tuple(params["record"])
    score: dict[str, Any] = {}
    for name in _OPTION_FLAGS:  # the options' own flags (None: not given)
        if params.get(name) is not None:
            (fields if name in _FLAT else score)[name] = params[name]
    for text in params["score_options"]:
        key, value = _split_option(text, "--score-option")
        if key in _FLAT:  # a flat key of the config: pydantic reads the text ("none" too)
            fields[key] = value
        else:
            score[key] = _cast(value)
    fields["score_options"] = score
    return fields


def config_from_params(params: Mapping[str, Any]) -> TrialConfig:
    """The study trial config of `spectrumkit train`'s parameters (NOTE [train command]).

    ``params``: the command's click parameters by name (``ctx.params``). Raises
    SpectrumkitError naming the flag when the config refuses a value.
    """
    from pydantic import ValidationError

    from ..errors import SpectrumkitError
    from ..study.config import TrialConfig, pydantic_message

    try:
        return TrialConfig(**_fields(params))
    except ValidationError as e:
        msg = pydantic_message("spectrumkit train", e)
        loc = "".join(str(x) for x in e.errors(include_url=False)[0].get("loc", ())[:1])
        if loc in _FIELD_PARAMS:  # speak in flags: 'expected --hidden ...'
            msg = msg.replace(f"expected {loc}", f"expected {_flag(loc)}", 1)
        raise SpectrumkitError(msg) from None


def _flag(field: str) -> str:
    """The flag of a flat TrialConfig key or score option, e.g. ``--hidden`` or ``--horizon``."""
    param = _param(_FIELD_PARAMS.get(field, field))
    return max(param.opts, key=len) if isinstance(param, click.Option) else param.name or field


def _param(name: str) -> click.Parameter:
    for p in train_cmd.params:
        if p.name == name:
            return p
    raise KeyError(name)


def _asked(f: str, value: Any) -> Any:
    """A flag's value as the config holds it (for a typed config field)."""
    from pydantic import TypeAdapter, ValidationError

    from ..study.config import TrialConfig

    field = TrialConfig.model_fields.get(f)
    if field is None or field.annotation is None:
        return value
    try:
        return TypeAdapter(field.annotation).validate_python(value)
    except ValidationError:
        return value


def _check_applies(fn: str, c: TrialConfig, params: Mapping[str, Any],
                   given: set[str]) -> None:
    """Refuse a flag given on the command line that the config drops (NOTE [train command])."""
    from ..errors import fail

    asked = _fields(params)
    texts = {_split_option(t, "--score-option")[0] for t in params["score_options"]}
    takes = set(type(c.score).model_fields)
    dropped: list[str] = []
    for f, p in _FIELD_PARAMS.items():
        if f == "score_options" or not (p in given or f in texts) or asked.get(f) in (None, ()):
            continue
        want, have = _asked(f, asked[f]), getattr(c, f)
        if f == "record":  # the config orders the records
            want, have = set(want), set(have)
        elif f == "spectrum_method" and want == "dense":  # the config's None is the dense SVD
            want = None
        if want != have:
            dropped.append(f"{_flag(f)} {_text(asked[f])}")
    for k, v in asked["score_options"].items():  # the other options: the method must take them
        if (k in given or k in texts) and k not in takes:
            dropped.append(f"{_flag(k) if k in _OPTION_FLAGS else '--score-option'} {k}={_text(v)}"
                           if k not in _OPTION_FLAGS else f"{_flag(k)} {_text(v)}")
    if dropped:
        raise fail(fn, f"flags that apply to --method {c.method} on --data {c.task} with "
                   "these records",
                   f"{', '.join(dropped)}, which this run would ignore")


def _check_flags(fn: str, params: Mapping[str, Any]) -> None:
    """The checks of the flags themselves, each naming its flag (before the config)."""
    import math

    import torch

    from ..errors import check_positive_int, check_seed, check_unit_interval, fail

    method, sparsity = params["method"], params["sparsity"]
    check_unit_interval(fn, "--sparsity", sparsity, low_open=False, high_open=True)
    if method == "dense" and sparsity != 0:
        raise fail(fn, "--sparsity 0 with --method dense", sparsity)
    if method != "dense" and sparsity == 0:
        raise fail(fn, f"--sparsity > 0 with --method {method}", sparsity)
    check_seed(fn, "--seed", params["seed"])
    if params["recipe"] is not None and method != "jacobian":
        raise fail(fn, "--recipe only with --method jacobian", f"--method {method}")
    for name in ("lr", "clip"):  # finite: the config alone would let inf through
        v = params[name]
        if v is not None and not (math.isfinite(v) and v > 0):
            raise fail(fn, f"--{name} to be a finite number > 0", repr(v))
    for name in ("embed_size", "softmax_samples"):
        if params[name] is not None and params["data_name"] not in WORD_TASKS:
            raise fail(fn, f"{_flag(name)} only for a word-level language task (--data "
                       f"{', '.join(WORD_TASKS)})",
                       f"{_flag(name)} {params[name]} with --data {params['data_name']}")
    for name in ("hidden", "score_batch", "embed_size"):
        if params[name] is not None:
            check_positive_int(fn, f"--{name.replace('_', '-')}", params[name])
    if params["threads"] is not None:
        check_positive_int(fn, "--threads", params["threads"])
        torch.set_num_threads(params["threads"])


def _even_stages(fn: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``--method l2`` without ``--stage-steps``: the evenly spaced stage length, written out.

    As :func:`spectrumkit.training.train_l2_iterative` spaces the stages for ``stage_steps=None``:
    k = ⌊steps / (stages + 1)⌋, stages = the schedule's densities above the target, plus the
    target. A study trial's config names its stage length; with ``--epochs`` the number of steps
    depends on the data, so ``--stage-steps`` must be given.
    """
    from ..errors import fail
    from ..training import L2_DENSITIES

    if params["method"] != "l2" or params["stage_steps"] is not None:
        return dict(params)
    if params["steps"] is None:
        raise fail(fn, "--stage-steps with --method l2 and --epochs", "no --stage-steps")
    density = 1.0 - params["sparsity"]
    stages = sum(d > density + 1e-9 for d in L2_DENSITIES) + 1  # the schedule's rule
    return {**params, "stage_steps": params["steps"] // (stages + 1) or None}


def _check_memory_for(fn: str, c: TrialConfig, task: TaskData, device: str) -> None:
    """Refuse sizes that cannot fit (NOTE [Memory terms]) before the model is allocated."""
    from ..errors import check_memory_terms
    from ..evaluation import resolve_device
    from ..study.config import memory_terms

    N = c.hidden_size
    e = c.embed_size or N
    D = task.input_size if task.kind != "language" else e
    heads = {"classification": (N + 1) * (task.num_classes or 0), "regression": N + 1,
             "language": (task.vocab_size or 0) * (e + N + 1)}[task.kind]
    shape = tuple(getattr(getattr(task.train, "xs", None), "shape", ()))
    T = task.bptt or (int(shape[1]) if len(shape) >= 2 else 1)
    flags = {f: "--" + _FIELD_PARAMS.get(f, f).replace("_", "-")
             for f in ("hidden_size", "batch_size", "score_batch", "spectrum_batch")}
    flags.update(gamma_steps="--gamma-steps", gamma_sequences="--gamma-sequences")
    check_memory_terms(fn, memory_terms(c, input_size=D or 1, heads=heads, seq_len=T,
                                        name=flags), resolve_device(device))


def _write_outputs(outdir: Path, record: dict[str, Any], result: PipelineResult,
                   method: str) -> list[Path]:
    """OUT/history.csv, OUT/metrics.json and OUT/mask.pt, each written atomically.

    NOTE [One set of outputs]: ``metrics.json`` is the completion record, removed first and
    written last: where it exists, the history and mask beside it are of the same run (runs into
    one folder are serialized by NOTE [Output locks]; a run killed while writing leaves no
    ``metrics.json``).
    """
    import json

    from .._io import write_text_atomic
    from ..masks import save_masks

    if (outdir / "metrics.json").is_file():
        (outdir / "metrics.json").unlink()
    mask = result.mask
    if mask is not None:
        # NOTE [Mask files]: the one format, as prune writes it (load_masks reads both)
        save_masks(outdir / "mask.pt", {method: mask}, record["config"])
    elif (outdir / "mask.pt").is_file():  # a dense run: an earlier run's mask would mislead
        (outdir / "mask.pt").unlink()
    hist = write_text_atomic(outdir / "history.csv", result.history.to_csv(index=False))
    met = write_text_atomic(outdir / "metrics.json",
                            json.dumps(record, indent=2, allow_nan=False))
    return [hist, met]


def _summary(c: TrialConfig, result: PipelineResult) -> str:
    """One line: the cell, the method, the status and the validation numbers."""
    m = result.metrics
    keys = [k for k in m if k.startswith(("val_", "test_")) and not k.endswith("_loss")]
    shown = {k: m[k] for k in [*keys, "density"] if isinstance(m.get(k), (int, float))}
    nums = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    tail = f" at step {m.get('diverged_at_step')}" if result.status == "diverged" else ""
    return (f"{c.cell}-{c.hidden_size} {c.method} on {c.task}: {result.status}{tail}"
            f"{': ' + nums if nums else ''} ({m.get('steps', 0)} steps, "
            f"{m.get('train_seconds', 0.0):.1f} s on {result.device})")


@main.command("train")
@click.option("--cell", default="gru", show_default=True, help="built-in cell")
@click.option("--hidden", type=int, default=128, show_default=True, help="N")
@click.option("--init", "init_scheme", default="glorot", show_default=True,
              help="init scheme (glorot, torch, normal:0.1, ...)")
@click.option("--method", type=click.Choice(TRAIN_METHODS), default="dense", show_default=True,
              help="dense, l2 (iterative magnitude prune-retrain, the paper's baseline), or a "
                   "score that prunes at initialization")
@click.option("--score-batch", type=int, default=64, show_default=True,
              help="examples in the scoring batch of a pruning score")
@click.option("--list-recipes", is_flag=True, expose_value=False, is_eager=True,
              callback=list_recipes, help="print the recipes of the jacobian score and exit")
@click.option("--sparsity", type=float, default=0.0, show_default=True,
              help="fraction of the cell's weights pruned (0 for dense)")
@click.option("--data", "data_name", default="seq-mnist", show_default=True,
              help="seq-mnist, wikitext, wikitext-103, 1b, adding or copy")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="folder with the full data set (default: the bundled data)")
@click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE",
              help="load_task option, repeatable (e.g. limit=1000, variant=pixel)")
@click.option("--epochs", type=int, default=None,
              help="passes over the training split (0: evaluate at initialization)")
@click.option("--steps", type=int, default=None,
              help="optimizer steps (instead of --epochs; 0: evaluate at initialization)")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adam", show_default=True)
@click.option("--clip", type=float, default=None, help="max gradient norm")
@click.option("--eval-every", type=int, default=None, help="steps between evaluations "
              "(default: every epoch)")
@click.option("--stage-steps", type=int, default=None,
              help="l2: steps per pruning stage (default: evenly spaced)")
@click.option("--embed-size", type=int, default=None, help="language models: E (default N)")
@click.option("--softmax-samples", type=int, default=None,
              help="language models: train with a sampled softmax of this many log-uniform "
                   "candidates (0 < S < V; default: full softmax; evaluation is always full)")
@click.option("--scope", type=click.Choice(SCOPES), default="global", show_default=True,
              help="one global top-K, or top-K within every tensor")
@click.option("--include-bias", is_flag=True, default=False,
              help="score and prune the cell's biases too")
@click.option("--score-option", "score_options", multiple=True, metavar="KEY=VALUE",
              help="an option of the score without a flag of its own, repeatable (batch_size: "
                   "the examples of χ and γ)")
@score_option_flags(exclude=_EXCLUDED)
@click.option("--score-repeats", type=int, default=1, show_default=True,
              help="time the scores as the best of this many runs")
@click.option("--pipeline", type=click.Choice(PIPELINES), default="plain", show_default=True,
              help="authors: train the pruned GRU as the authors' code does "
                   "(z and candidate blocks swapped, zero trainable biases)")
@click.option("--block-swap/--no-block-swap", default=None,
              help="swap the z and candidate blocks before training (default: with "
                   "--pipeline authors)")
@click.option("--record", multiple=True, type=click.Choice(RECORDS),
              help="a record of the study trial, repeatable (stored in OUT/metrics.json)")
@click.option("--spectrum-batch", type=int, default=None,
              help="sequences for the spectral records (default 64)")
@click.option("--spectrum-method", type=click.Choice(SPECTRUM_METHODS), default=None,
              help="dense SVD (default) or lanczos (without forming J)")
@click.option("--hist-bins", type=int, default=None, help="bins of sv_hist (default 50)")
@click.option("--lyapunov-k", type=int, default=None,
              help="Lyapunov exponents to record (default: all)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:K")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seeds the initialization, the data order and the scores")
@click.option("--threads", type=int, default=None, help="torch CPU threads for this process")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="checkpoint into OUT/checkpoint and resume from it (the same run only); "
                   "--no-resume starts afresh and first removes an earlier run's files in OUT")
@click.option("--progress/--no-progress", default=None,
              help="progress bar on stderr (default: when stderr is a terminal)")
@click.option("--log", type=click.Choice(["tensorboard"]), default=None,
              help="also write TensorBoard curves to OUT/tensorboard (the tensorboard extra): "
                   "history.csv's columns and lr per evaluation, the mask's I/R and gate shares")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="output folder")
def train_cmd(**params: Any) -> None:
    """Train one model and write OUT/history.csv, OUT/metrics.json and OUT/mask.pt (atomically).

    The run is a study trial's pipeline: it prints the trial's key, and a study trial's
    `reproduce:` line runs this command.
    """
    import math

    import torch

    from .._io import check_output_dir
    from .._lock import folder_lock
    from ..data import data_identity
    from ..pipeline import load_data, run_pipeline
    from ..study.config import trial_key

    fn = "spectrumkit train"
    _check_flags(fn, params)
    params = _even_stages(fn, params)
    c = config_from_params(params)
    ctx = click.get_current_context()
    given = {p for p in params
             if ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE}
    _check_applies(fn, c, params, given)
    outdir = check_output_dir(f"{fn} --out", params["out"], files=_OUTPUTS)  # NOTE [Output paths]
    task = load_data(c, params["data_root"])
    _check_memory_for(fn, c, task, params["device"])
    ident = data_identity(c.task, params["data_root"])  # as the study runner takes it
    key = trial_key(c, data=ident)
    click.echo(f"key: {key}")
    config = c.model_dump(mode="json")
    # NOTE [Checkpoint identity]: the config but its length (which may grow) and the data's files
    identity = {**{k: v for k, v in config.items() if k not in ("epochs", "steps")},
                "data_identity": ident}
    # NOTE [Output locks]: one run per --out; held until the command ends
    ctx.with_resource(folder_lock(f"{fn} --out", outdir, "output folder"))
    if not params["resume"]:  # start afresh: no artifact of an earlier run in OUT may survive
        for name in _OUTPUTS:
            if (outdir / name).is_file():
                (outdir / name).unlink()
    tb = None
    if params["log"] == "tensorboard":  # spectrumkit/tensorboard_log.py
        from ..tensorboard_log import TensorBoardLog

        tb = TensorBoardLog(outdir / "tensorboard", lr=c.lr)
    result = run_pipeline(c, device=params["device"], data_root=params["data_root"], task=task,
                          checkpoint_dir=outdir / "checkpoint" if params["resume"] else None,
                          progress=params["progress"], identity=identity, callback=tb)
    if tb is not None:
        tb.log_mask(c.cell, result.mask, result.model.input_size, c.hidden_size)
        tb.finish(result.history)

    def finite(v: Any) -> Any:
        return v if not isinstance(v, float) or math.isfinite(v) else None

    record = dict(config=config, key=key, status=result.status,
                  diverged_at=result.metrics.get("diverged_at_step"),
                  metrics={k: finite(v) for k, v in result.metrics.items()},
                  artifacts=result.artifacts, device=result.device, data=result.data,
                  torch=torch.__version__)
    hist, met = _write_outputs(outdir, record, result, c.method)
    click.echo(_summary(c, result))
    click.echo(f"data: {result.data}")
    click.echo(f"wrote {hist}, {met}")


def train_command(config: TrialConfig, data_root: str | None = None) -> str:
    r"""The ``spectrumkit train`` command line that runs ``config`` (NOTE [train command]).

    Lists every flag whose value differs from the command's default and matters to the config,
    and ``--data-root`` when given; ``--out OUT`` is a placeholder. Shell-quoted (shlex). Raises
    SpectrumkitError for a config the command cannot express: another trial kind, a TrialConfig
    field without a flag, or values that do not read back as the same config.

    >>> from spectrumkit.study.config import TrialConfig
    >>> train_command(TrialConfig(method="random", sparsity=0.9, hidden_size=8, steps=5))
    'spectrumkit train --hidden 8 --method random --sparsity 0.9 --steps 5 --out OUT'
    """
    from ..errors import fail
    from ..study.config import TrialConfig

    fn = "train_command"
    if config.trial != "prune-train":
        raise fail(fn, "a prune-train trial", repr(config.trial))
    keys = [k for k in TrialConfig.input_keys() if k not in ("trial", "score")]
    missing = [k for k in keys if k not in _FIELD_PARAMS]
    if missing:
        raise fail(fn, "a flag of spectrumkit train for every TrialConfig field",
                   f"none for {', '.join(missing)}")
    defaults = {p.name: (() if p.multiple else p.default) for p in train_cmd.params
                if isinstance(p, click.Option) and p.name}
    params = {**defaults, **_params_of(config)}
    for name in [n for n in params if params[n] != defaults.get(n)]:  # drop what does not matter
        trial = {**params, name: defaults[name]}
        if _same(trial, config):
            params = trial
    for i in reversed(range(len(params["score_options"]))):
        opts = params["score_options"]
        trial = {**params, "score_options": opts[:i] + opts[i + 1:]}
        if _same(trial, config):
            params = trial
    if not _same(params, config):
        raise fail(fn, "a config whose values read back from the command line",
                   f"{config.model_dump(mode='json')}")
    args = ["spectrumkit", "train"]
    for p in train_cmd.params:
        if isinstance(p, click.Option) and p.name in params and params[p.name] != defaults[p.name]:
            args += _option_args(p, params[p.name])
    if data_root is not None:
        args += ["--data-root", str(data_root)]
    return shlex.join([*args, "--out", "OUT"])


def _params_of(c: TrialConfig) -> dict[str, Any]:
    """The click parameters that ask for config ``c`` (the inverse of :func:`_fields`)."""
    params = {p: getattr(c, f) for f, p in _FIELD_PARAMS.items() if p not in _SPECIAL}
    params["data_options"] = tuple(f"{k}={_text(v)}" for k, v in c.data.items())
    params["record"] = tuple(c.record)
    params.update({f: getattr(c, f) for f in _FLAT})
    extra = c.score_options
    params.update({k: v for k, v in extra.items() if k in _OPTION_FLAGS})
    params["score_options"] = tuple(f"{k}={_text(v)}" for k, v in extra.items()
                                    if k not in _OPTION_FLAGS)
    return params


def _same(params: Mapping[str, Any], config: TrialConfig) -> bool:
    """Whether ``params`` build ``config`` (False when they build nothing valid)."""
    from ..errors import SpectrumkitError

    try:
        return config_from_params(params) == config
    except (SpectrumkitError, click.BadParameter):
        return False


def _option_args(p: click.Option, value: Any) -> list[str]:
    """The command-line words that set option ``p`` to ``value``."""
    if p.is_flag and p.secondary_opts:  # --block-swap / --no-block-swap
        return [p.opts[0] if value else p.secondary_opts[0]]
    if p.is_flag:
        return [p.opts[0]] if value else []
    flag = max(p.opts, key=len)
    if p.multiple:
        return [w for v in value for w in (flag, str(v))]
    return [flag, _text(value)]
