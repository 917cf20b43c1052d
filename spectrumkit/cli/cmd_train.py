"""`spectrumkit train`: prune at initialization (or not) and train."""

from __future__ import annotations

import click

from . import main
from .cmd_prune import list_recipes


# NOTE [train command]
# --method dense trains the full model; l2 is the paper's iterative magnitude prune-retrain; every
# other method is a pruning-at-initialization score (spectrumkit.scores.METHODS, default options):
# the scoring batch is --score-batch examples of the training split drawn by a generator seeded
# --seed + 1, the score's own randomness comes from --seed + 2 (as NOTE [prune command]), and the
# exact-K mask keeps round((1 - sparsity) · n) of the cell's weights, held exactly during training.

#: What a run writes in OUT: checked up front, and removed first by --no-resume.
_OUTPUTS = ("history.csv", "metrics.json", "mask.pt", "checkpoint/checkpoint.pt")
_TRAIN_METHODS = ("dense", "l2", "jacobian", "snip", "foresight", "magnitude", "random", "synflow")


def _parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as int, float, ``true``/``false``, ``none`` or a string."""
    if "=" not in text:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--data-option")
    key, value = (t.strip() for t in text.split("=", 1))
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):  # e.g. sample=true for load_task("1b")
        return key, value.lower() == "true"
    return key, None if value.lower() == "none" else value


@main.command("train")
@click.option("--cell", default="gru", show_default=True, help="built-in cell")
@click.option("--hidden", type=int, default=128, show_default=True, help="N")
@click.option("--init", "init_scheme", default="glorot", show_default=True,
              help="init scheme (glorot, torch, normal:0.1, ...)")
@click.option("--method", type=click.Choice(_TRAIN_METHODS), default="dense", show_default=True,
              help="dense, l2 (iterative magnitude prune-retrain, the paper's baseline), or a "
                   "score that prunes at initialization (NOTE [train command])")
@click.option("--score-batch", type=int, default=64, show_default=True,
              help="examples in the scoring batch of a pruning score")
@click.option("--recipe", default=None,
              help="jacobian: a named recipe of the score (see --list-recipes)")
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
@click.option("--epochs", type=int, default=None, help="passes over the training split")
@click.option("--steps", type=int, default=None, help="optimizer steps (instead of --epochs)")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--optimizer", type=click.Choice(("adam", "sgd")), default="adam", show_default=True)
@click.option("--clip", type=float, default=None, help="max gradient norm")
@click.option("--eval-every", type=int, default=None, help="steps between evaluations "
              "(default: every epoch)")
@click.option("--stage-steps", type=int, default=None,
              help="l2: steps per pruning stage (default: evenly spaced)")
@click.option("--embed-size", type=int, default=None, help="language models: E (default N)")
@click.option("--softmax-samples", type=int, default=None,
              help="language models: train with a sampled softmax of this many log-uniform "
                   "candidates (0 < S < V; default: full softmax; evaluation is always full)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:K")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seeds the initialization and the data order")
@click.option("--threads", type=int, default=None, help="torch CPU threads for this process")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="checkpoint into OUT/checkpoint and resume from it (the same run only); "
                   "--no-resume starts afresh and first removes an earlier run's files in OUT")
@click.option("--progress/--no-progress", default=None,
              help="progress bar on stderr (default: when stderr is a terminal)")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="output folder")
def train_cmd(cell, hidden, init_scheme, method, sparsity, data_name, data_root, data_options,
              score_batch, recipe, epochs, steps, batch_size, lr, optimizer, clip, eval_every,
              stage_steps, embed_size, device, seed, threads, resume, progress, out, softmax_samples=None
              ) -> None:
    """Train one model and write OUT/history.csv and OUT/metrics.json (atomically)."""
    import json
    import math

    import torch

    from .._io import check_output_dir, write_atomic
    from ..cells import count_params
    from ..data import load_task
    from ..errors import check_positive_int, check_seed, check_unit_interval, fail
    from ..evaluation import resolve_device
    from ..train import make_model, train, train_l2_iterative
    from ._data import _check_memory

    fn = "spectrumkit train"
    check_unit_interval(fn, "--sparsity", sparsity, low_open=False, high_open=True)
    if method == "dense" and sparsity != 0:
        raise fail(fn, "--sparsity 0 with --method dense", sparsity)
    if method != "dense" and sparsity == 0:
        raise fail(fn, f"--sparsity > 0 with --method {method}", sparsity)
    check_seed(fn, "--seed", seed)
    if recipe is not None and method != "jacobian":
        raise fail(fn, "--recipe only with --method jacobian", f"--method {method}")
    if threads is not None:
        check_positive_int(fn, "--threads", threads)
        torch.set_num_threads(threads)
    outdir = check_output_dir(f"{fn} --out", out, files=_OUTPUTS)  # NOTE [Output paths]
    options = dict(_parse_option(t) for t in data_options)
    task = load_task(data_name, root=data_root, **options)
    if embed_size is not None:
        if task.kind != "language":
            raise fail(fn, "--embed-size only for a language task (--data wikitext)",
                       f"--embed-size {embed_size} with --data {data_name}")
        check_positive_int(fn, "--embed-size", embed_size)
    check_positive_int(fn, "--hidden", hidden)
    e = embed_size or hidden
    D = task.input_size if task.kind != "language" else e
    heads = {"classification": (hidden + 1) * (task.num_classes or 0), "regression": hidden + 1,
             "language": (task.vocab_size or 0) * (e + hidden + 1)}[task.kind]
    _check_memory(fn, f"--hidden {hidden}: a model", count_params(cell, D, hidden, include_bias=True)
                  + heads, 4 if optimizer == "adam" else 2, resolve_device(device))
    model = make_model(task, cell, hidden, init=init_scheme, seed=seed, embed_size=embed_size,
                       softmax_samples=softmax_samples)
    config = dict(cell=cell, hidden=hidden, init=init_scheme, method=method, sparsity=sparsity,
                  data=data_name, data_root=data_root, data_options=options, epochs=epochs,
                  steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer, clip=clip,
                  eval_every=eval_every, stage_steps=stage_steps, embed_size=embed_size, seed=seed,
                  softmax_samples=softmax_samples, recipe=recipe)
    # NOTE [Checkpoint identity]: everything that defines the run, but the length, which may grow
    identity = {k: v for k, v in config.items() if k not in ("epochs", "steps")}
    if method not in ("dense", "l2"):
        identity["score_batch"] = score_batch
    if not resume:  # start afresh: no artifact of an earlier run in OUT may survive
        for name in _OUTPUTS:
            if (outdir / name).is_file():
                (outdir / name).unlink()
    common = dict(epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer,
                  clip=clip, device=device, seed=seed, eval_every=eval_every, progress=progress,
                  checkpoint_dir=outdir / "checkpoint" if resume else None, identity=identity)
    if method == "dense":
        result = train(model, task, **common)
    elif method != "l2":
        from ..data import sample_batch
        from ..evaluation import resolve_device
        from ..masks import topk_mask
        from ..scores import compute_scores

        check_positive_int(fn, "--score-batch", score_batch)
        dev = resolve_device(device)
        model.to(dev)
        batch = sample_batch(task.train, score_batch, generator=torch.Generator().manual_seed(
            seed + 1), bptt=task.bptt, device=dev)
        density = round(1.0 - sparsity, 12)
        opts = {"density": density} if method == "synflow" else {}
        if recipe is not None:
            opts["recipe"] = recipe
        scores = compute_scores(method, model, batch,
                                generator=torch.Generator().manual_seed(seed + 2), **opts)
        result = train(model, task, mask=topk_mask(scores, density), **common)
    else:
        result = train_l2_iterative(model, task, density=round(1.0 - sparsity, 12),
                                    stage_steps=stage_steps, **common)

    def finite(v):
        return v if not isinstance(v, float) or math.isfinite(v) else None

    record = dict(config=config, status=result.status, diverged_at=result.diverged_at,
                  metrics={k: finite(v) for k, v in result.metrics.items()},
                  device=result.device, data=result.description, torch=torch.__version__)
    hist = outdir / "history.csv"
    write_atomic(hist, lambda f: f.write(result.history.to_csv(index=False).encode()))
    met = outdir / "metrics.json"
    write_atomic(met, lambda f: f.write(json.dumps(record, indent=2, allow_nan=False).encode()))
    if result.mask is not None:
        write_atomic(outdir / "mask.pt", lambda f: torch.save(result.mask, f))
    elif (outdir / "mask.pt").is_file():  # a dense run: an earlier run's mask would mislead
        (outdir / "mask.pt").unlink()
    shown = {k: v for k, v in result.metrics.items()
             if k.startswith(("val_", "test_")) and not k.endswith("_loss") or k == "density"}
    nums = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    tail = f" at step {result.diverged_at}" if result.status == "diverged" else ""
    click.echo(f"{cell}-{hidden} {method} on {data_name}: {result.status}{tail}"
               f"{': ' + nums if nums else ''} ({result.metrics['steps']} steps, "
               f"{result.metrics['train_seconds']:.1f} s on {result.device})")
    click.echo(f"data: {result.description}")
    click.echo(f"wrote {hist}, {met}")
