"""`spectrumkit train`: prune at initialization (or not) and train, as a study trial does."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..choices import TRAIN_METHODS, WORD_TASKS
from ..config.flags import (
    Flag,
    config_from_flags,
    flag_of,
    read_value,
    setting_flags,
    text_of,
)
from ..config.flags import train_command as train_command
from . import main
from ._options import click_type
from ._vocabulary import device_option
from .cmd_prune import list_recipes

if TYPE_CHECKING:
    from ..config import RunConfig as TrialConfig
    from ..data import TaskData
    from ..pipeline import PipelineResult

__all__ = ["config_from_params", "train_command"]

# NOTE [train command]
# The settings flags are the run configuration's fields (NOTE [Flags from fields] in
# spectrumkit/config/flags.py): each defaults to "not given", so the configuration's own default
# applies and the command with no flags runs RunConfig(), the default trial. The command runs the
# same pipeline as a study trial (spectrumkit.pipeline.run_pipeline): --method dense trains the
# full model; l2 is the paper's iterative magnitude prune-retrain; every other method is a
# pruning-at-initialization score whose scoring batch and randomness come from
# sub_seed(--seed, "score-batch") and sub_seed(--seed, "scores") (NOTE [Trial randomness]), and
# the exact-K mask keeps round((1 - sparsity) · n) of the cell's weights, held exactly during
# training. So the command a study trial's log prints (train_command) trains that trial's mask bit
# for bit, and prints the trial's key. A flag the config would drop (one that does not apply to
# the method, the task or the records) is refused, never silently ignored (NOTE [Canonical
# configs]). A renamed flag's old name is refused with one line naming the new one.

#: What a run writes in OUT: checked up front, and removed first by --no-resume.
_OUTPUTS = ("history.csv", "metrics.json", "mask.pt", "checkpoint/checkpoint.pt")
#: The data option that ``--seq-len`` sets, for the tasks that take one.
_SEQ_LEN = "T"

F = TypeVar("F", bound=Callable[..., Any])


def _split_option(text: str, hint: str) -> tuple[str, str]:
    """``KEY=VALUE`` → (KEY, VALUE), both stripped."""
    if "=" not in text:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint=hint)
    key, value = (t.strip() for t in text.split("=", 1))
    return key, value


def _click_decls(f: Flag) -> tuple[list[str], dict[str, Any]]:
    """The click declaration of one settings flag."""
    ann = f.field.annotation if f.field is not None else str
    if f.key == "method":
        return [f.flag, f.param], dict(type=click.Choice(TRAIN_METHODS), default=None)
    if f.kind == "switch" or (f.kind == "option" and ann is bool):
        return [f"{f.flag}/--no-{f.flag[2:]}", f.param], dict(default=None)
    if f.kind == "pairs":
        return [f.flag, f.param], dict(multiple=True, metavar="KEY=VALUE")
    if f.kind == "multiple":
        inner = typing.get_args(ann)[0]
        choices = typing.get_args(inner) if typing.get_origin(inner) is typing.Literal else ()
        return [f.flag, f.param], dict(multiple=True, type=click.Choice(choices)
                                       if choices else str)
    kind = click_type(ann, choice=f.kind != "option")
    return [f.flag, f.param], dict(type=kind, default=None)


def settings_flags(fn: F) -> F:
    """A click decorator: one flag per field of the run configuration (NOTE [Flags from
    fields])."""
    for f in reversed(setting_flags()):
        decls, kw = _click_decls(f)
        fn = click.option(*decls, help=f.help, **kw)(fn)
    return fn


def _given(params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings flags given, by config key (dicts for the ``KEY=VALUE`` flags)."""
    out: dict[str, Any] = {}
    for f in setting_flags():
        v = params.get(f.param)
        if v is None or v == ():
            continue
        if f.kind == "pairs":
            pairs = [_split_option(t, f.flag) for t in v]
            v = {k: (x if f.key == "score_options" and k in ("normalize", "recipe",
                                                               "estimator") else read_value(x))
                 for k, x in pairs}
        out[f.key] = v
    if params.get("seq_len") is not None:
        out["data"] = {**out.get("data", {}), _SEQ_LEN: params["seq_len"]}
    return out


def config_from_params(params: Mapping[str, Any]) -> TrialConfig:
    """The run configuration of `spectrumkit train`'s parameters (NOTE [train command]).

    ``params``: the command's click parameters by name (``ctx.params``). Raises
    SpectrumkitError naming the flag when the configuration refuses a value.
    """
    from pydantic import ValidationError

    from ..config import RunConfig, pydantic_message
    from ..errors import SpectrumkitError

    try:
        return RunConfig(**config_from_flags(_given(params)))
    except ValidationError as e:
        msg = pydantic_message("spectrumkit train", e)
        loc = "".join(str(x) for x in e.errors(include_url=False)[0].get("loc", ())[:1])
        named = re.match(r"spectrumkit train: expected (\w+) to be ", msg)
        loc = loc or (named.group(1) if named else "")
        if loc and f"expected {loc}" in msg:  # speak in flags: 'expected --hidden-size ...'
            msg = msg.replace(f"expected {loc}", f"expected {flag_of(loc)}", 1)
        raise SpectrumkitError(msg) from None


def _check_applies(fn: str, c: TrialConfig, params: Mapping[str, Any]) -> None:
    """Refuse a flag given on the command line that the config drops (NOTE [train command])."""
    from ..errors import fail

    asked = config_from_flags(_given(params))
    flat = {**c.model_dump(), **{k: getattr(c, k) for k in ("method", "normalize", "horizon",
                                                             "estimator", "through_time",
                                                             "recipe", "l2_stage_steps",
                                                             "dtype")}}
    takes = set(type(c.score).model_fields)
    dropped: list[str] = []
    for k, v in asked.items():
        if k in ("score_options", "data"):
            continue
        have = flat.get(k)
        want = v
        if k == "record":  # the config orders the records
            want, have = set(want), set(have or ())
        elif k == "spectrum_method" and want == "dense":  # the config's None is the dense SVD
            want = None
        elif isinstance(have, float) or isinstance(want, float):
            want, have = float(want), float(have) if have is not None else None
        if want != have:
            dropped.append(f"{flag_of(k)} {text_of(v) if not isinstance(v, tuple) else v}")
    for k, v in asked["score_options"].items():  # the other options: the method must take them
        if k not in takes:
            own = flag_of(k)
            dropped.append(f"{own} {text_of(v)}" if own != k else
                           f"--score-option {k}={text_of(v)}")
    if dropped:
        raise fail(fn, f"flags that apply to --method {c.method} on --data {c.task} with "
                   "these records",
                   f"{', '.join(dropped)}, which this run would ignore")


def _check_flags(fn: str, params: Mapping[str, Any]) -> None:
    """The checks of the flags themselves, each naming its flag (before the config)."""
    import torch

    from ..errors import check_positive_int, check_seed, fail

    method, sparsity = params["method"] or "jacobian", params["sparsity"]
    if sparsity is not None and method == "dense" and sparsity != 0:
        raise fail(fn, "--sparsity 0 with --method dense", sparsity)
    if sparsity is not None and method != "dense" and sparsity == 0:
        raise fail(fn, f"--sparsity > 0 with --method {method}", sparsity)
    if params["seed"] is not None:
        check_seed(fn, "--seed", params["seed"])
    if params["recipe"] is not None and method != "jacobian":
        raise fail(fn, "--recipe only with --method jacobian", f"--method {method}")
    task = params["task"] or "seq-mnist"
    for name in ("embed_size", "softmax_samples"):
        if params[name] is not None and task not in WORD_TASKS:
            raise fail(fn, f"{flag_of(name)} only for a word-level language task (--data "
                       f"{', '.join(WORD_TASKS)})",
                       f"{flag_of(name)} {params[name]} with --data {task}")
    if params["seq_len"] is not None and task not in ("adding", "copy"):
        raise fail(fn, "--seq-len only for a task that takes a length T (--data adding, copy)",
                   f"--seq-len {params['seq_len']} with --data {task}")
    if params["threads"] is not None:
        check_positive_int(fn, "--threads", params["threads"])
        torch.set_num_threads(params["threads"])


def _even_stages(fn: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``--method l2`` without ``--stage-steps``: the evenly spaced stage length, written out.

    As :func:`spectrumkit.training.train_l2_iterative` spaces the stages for
    ``stage_steps=None``: k = ⌊steps / (stages + 1)⌋, stages = the schedule's densities above the
    target, plus the target. A study trial's config names its stage length; with ``--epochs``
    the number of steps depends on the data, so ``--stage-steps`` must be given.
    """
    from ..config import PruningConfig
    from ..errors import fail
    from ..training import L2_DENSITIES

    if params["method"] != "l2" or params["l2_stage_steps"] is not None:
        return dict(params)
    if params["steps"] is None:
        raise fail(fn, "--stage-steps with --method l2 and --epochs", "no --stage-steps")
    sparsity = params["sparsity"]
    if sparsity is None:
        sparsity = PruningConfig.model_fields["sparsity"].default
    density = 1.0 - sparsity
    stages = sum(d > density + 1e-9 for d in L2_DENSITIES) + 1  # the schedule's rule
    return {**params, "l2_stage_steps": params["steps"] // (stages + 1) or None}


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
    flags = {f: flag_of(f) for f in ("hidden_size", "batch_size", "score_batch",
                                     "spectrum_batch", "gamma_steps", "gamma_sequences")}
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
@settings_flags
@click.option("--seq-len", "seq_len", type=int, default=None,
              help="T, the sequence length of a task that takes one (adding, copy): the data "
                   "option T")
@click.option("--list-recipes", is_flag=True, expose_value=False, is_eager=True,
              callback=list_recipes, help="print the recipes of the jacobian score and exit")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="folder with the full data set (default: the bundled data)")
@device_option()
@click.option("--allow-trial-code", is_flag=True,
              help="let --data be an import path 'module:function' (imports and runs that code)")
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
    from ..data.tasks import check_task_code, task_code_allowed
    from ..pipeline import load_data, run_pipeline
    from ..study.config import trial_key

    fn = "spectrumkit train"
    # NOTE [Your own task] (spectrumkit/data/tasks.py): code only with the explicit flag
    check_task_code(fn, params["task"] or "seq-mnist", params["allow_trial_code"], key="--data")
    _check_flags(fn, params)
    params = _even_stages(fn, params)
    c = config_from_params(params)
    ctx = click.get_current_context()
    _check_applies(fn, c, params)
    outdir = check_output_dir(f"{fn} --out", params["out"], files=_OUTPUTS)  # NOTE [Output paths]
    task = load_data(c, params["data_root"])
    _check_memory_for(fn, c, task, params["device"])
    with task_code_allowed(params["allow_trial_code"]):  # checked above (NOTE [Your own task])
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
