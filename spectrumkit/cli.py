"""The ``spectrumkit`` command: a thin click shell over the public functions.

NOTE [CLI errors]
Every failure a user can cause ends the same way: one line ``error: ...`` on stderr and exit
status 2, no traceback. That covers click's own usage errors (unknown option, bad value) and every
:class:`~spectrumkit.errors.SpectrumkitError` raised by the library.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import SpectrumkitError


class _Group(click.Group):
    """A click group whose errors are one line and exit status 2 (NOTE [CLI errors])."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except click.ClickException as e:
            msg = " ".join(e.format_message().split())
            click.echo(f"error: {msg} (see 'spectrumkit --help')", err=True)
            sys.exit(2)
        except SpectrumkitError as e:
            click.echo(f"error: {' '.join(str(e).split())}", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spectrumkit")
def main() -> None:
    """Temporal Jacobians, spectra and pruning at initialization for recurrent networks."""


@main.command("cells")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden", type=int, default=400, show_default=True, help="N")
def cells_cmd(input_size: int, hidden: int) -> None:
    """List the built-in cells with their weight counts at (D, N)."""
    from .cells import available, count_params, get

    click.echo(f"{'cell':<15}{'gates':<10}{'weights':>12}{'with bias':>12}")
    for name in available():
        c = get(name)
        click.echo(f"{name:<15}{','.join(c.gates):<10}{count_params(c, input_size, hidden):>12,}"
                   f"{count_params(c, input_size, hidden, include_bias=True):>12,}")


# --------------------------------------------------------------------------------------------------
# spectrumkit train (issue 5)
# --------------------------------------------------------------------------------------------------

_TRAIN_METHODS = ("dense", "l2")


def _parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as int, float, ``none`` or a string."""
    if "=" not in text:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--data-option")
    key, value = (t.strip() for t in text.split("=", 1))
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, None if value.lower() == "none" else value


@main.command("train")
@click.option("--cell", default="gru", show_default=True, help="built-in cell")
@click.option("--hidden", type=int, default=128, show_default=True, help="N")
@click.option("--init", "init_scheme", default="glorot", show_default=True,
              help="init scheme (glorot, torch, normal:0.1, ...)")
@click.option("--method", type=click.Choice(_TRAIN_METHODS), default="dense", show_default=True,
              help="dense, or l2 (iterative magnitude prune-retrain, the paper's baseline)")
@click.option("--sparsity", type=float, default=0.0, show_default=True,
              help="fraction of the cell's weights pruned (0 for dense)")
@click.option("--data", "data_name", default="seq-mnist", show_default=True,
              help="seq-mnist, wikitext, adding or copy")
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
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:K")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seeds the initialization and the data order")
@click.option("--threads", type=int, default=None, help="torch CPU threads for this process")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="checkpoint into OUT/checkpoint and resume from it")
@click.option("--progress/--no-progress", default=None,
              help="progress bar on stderr (default: when stderr is a terminal)")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="output folder")
def train_cmd(cell, hidden, init_scheme, method, sparsity, data_name, data_root, data_options,
              epochs, steps, batch_size, lr, optimizer, clip, eval_every, stage_steps, embed_size,
              device, seed, threads, resume, progress, out) -> None:
    """Train one model and write OUT/history.csv and OUT/metrics.json (atomically)."""
    import json
    import math
    from pathlib import Path

    import torch

    from .data import load_task
    from .errors import check_positive_int, check_unit_interval, fail
    from .train import make_model, train, train_l2_iterative, write_atomic

    fn = "spectrumkit train"
    check_unit_interval(fn, "--sparsity", sparsity, low_open=False, high_open=True)
    if method == "dense" and sparsity != 0:
        raise fail(fn, "--sparsity 0 with --method dense", sparsity)
    if method == "l2" and sparsity == 0:
        raise fail(fn, "--sparsity > 0 with --method l2", sparsity)
    if threads is not None:
        check_positive_int(fn, "--threads", threads)
        torch.set_num_threads(threads)
    options = dict(_parse_option(t) for t in data_options)
    task = load_task(data_name, root=data_root, **options)
    model = make_model(task, cell, hidden, init=init_scheme, seed=seed, embed_size=embed_size)
    outdir = Path(out)
    common = dict(epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer,
                  clip=clip, device=device, seed=seed, eval_every=eval_every, progress=progress,
                  checkpoint_dir=outdir / "checkpoint" if resume else None)
    if method == "dense":
        result = train(model, task, **common)
    else:
        result = train_l2_iterative(model, task, density=round(1.0 - sparsity, 12), stage_steps=stage_steps,
                                    **common)

    def finite(v):
        return v if not isinstance(v, float) or math.isfinite(v) else None

    config = dict(cell=cell, hidden=hidden, init=init_scheme, method=method, sparsity=sparsity,
                  data=data_name, data_root=data_root, data_options=options, epochs=epochs,
                  steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer, clip=clip,
                  eval_every=eval_every, stage_steps=stage_steps, embed_size=embed_size, seed=seed)
    record = dict(config=config, status=result.status, diverged_at=result.diverged_at,
                  metrics={k: finite(v) for k, v in result.metrics.items()},
                  device=result.device, data=result.description, torch=torch.__version__)
    hist = outdir / "history.csv"
    write_atomic(hist, lambda f: f.write(result.history.to_csv(index=False).encode()))
    met = outdir / "metrics.json"
    write_atomic(met, lambda f: f.write(json.dumps(record, indent=2, allow_nan=False).encode()))
    if result.mask is not None:
        write_atomic(outdir / "mask.pt", lambda f: torch.save(result.mask, f))
    shown = {k: v for k, v in result.metrics.items()
             if k.startswith(("val_", "test_")) and not k.endswith("_loss") or k == "density"}
    nums = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
    tail = f" at step {result.diverged_at}" if result.status == "diverged" else ""
    click.echo(f"{cell}-{hidden} {method} on {data_name}: {result.status}{tail}"
               f"{': ' + nums if nums else ''} ({result.metrics['steps']} steps, "
               f"{result.metrics['train_seconds']:.1f} s on {result.device})")
    click.echo(f"data: {result.description}")
    click.echo(f"wrote {hist}, {met}")


if __name__ == "__main__":  # pragma: no cover
    main()
