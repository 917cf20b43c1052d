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
# A scoring / probing batch shared by `prune` and `spectrum`
# --------------------------------------------------------------------------------------------------
# NOTE [CLI data]
# `--data gaussian`: x ~ N(0, 1) of shape (B, T, D) and labels uniform in [0, classes), drawn from a
# generator seeded --seed + 1. `--data seq-mnist`: B examples of the row-wise sequential MNIST
# training split (T = D = 28, unit pixel scale), chosen without replacement by a generator seeded
# --seed + 1; `--data-root` points at the full data set, else the bundled 8k/2k split is used.

_CLI_DATA = ("gaussian", "seq-mnist")


def _cli_batch(fn: str, data: str, data_root: str | None, batch: int, seq_len: int,
               input_size: int, classes: int, seed: int, dtype=None):
    """Return (xs (B, T, D) batch-first, ys (B,)) on the CPU for --data (NOTE [CLI data])."""
    import torch

    from .errors import fail

    if data not in _CLI_DATA:
        raise fail(fn, f"--data one of {', '.join(_CLI_DATA)}", repr(data))
    g = torch.Generator().manual_seed(seed + 1)
    if data == "gaussian":
        if data_root is not None:
            raise fail(fn, "no --data-root with --data gaussian", repr(data_root))
        xs = torch.randn(batch, seq_len, input_size, generator=g, dtype=dtype)
        return xs, torch.randint(0, classes, (batch,), generator=g)
    from .data import seq_mnist

    split = seq_mnist(data_root, split="train")
    n, T, D = split.xs.shape
    if (seq_len, input_size) != (T, D):
        raise fail(fn, f"--seq-len/--steps {T} and --input-size {D} for row-wise seq-mnist",
                   f"{seq_len} and {input_size}")
    if not 1 <= batch <= n:
        raise fail(fn, f"a batch size in 1..{n} for seq-mnist", batch)
    idx = torch.randperm(n, generator=g)[:batch]
    return split.xs[idx].to(dtype or split.xs.dtype), split.ys[idx]


# --------------------------------------------------------------------------------------------------
# prune: scores -> exact-K masks -> anatomy (spectrumkit.scores, spectrumkit.masks, .anatomy)
# --------------------------------------------------------------------------------------------------
# NOTE [prune command]
# The model is a SequenceClassifier drawn from --seed; the data from --seed + 1 (NOTE [CLI data]);
# every method's scores from a fresh generator seeded --seed + 2, so a method's mask does not depend on what it is compared with.
# Score options given on the command line go to every selected method that accepts them; one that
# no selected method accepts is an error.

_SCORE_FLAGS = ("horizon", "estimator", "through_time", "normalize", "gamma_inputs", "gamma_state",
                "discount", "balance", "iterations")


@main.command("prune")
@click.option("--cell", default="gru", show_default=True, help="built-in cell")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden", type=int, default=400, show_default=True, help="N")
@click.option("--classes", type=int, default=10, show_default=True, help="C of the head")
@click.option("--steps", type=int, default=28, show_default=True, help="T of the batch")
@click.option("--batch-size", type=int, default=64, show_default=True, help="B of the batch")
@click.option("--init", default="glorot", show_default=True, help="initialization scheme")
@click.option("--method", default="jacobian", show_default=True,
              help="jacobian, snip, foresight, magnitude, random or synflow")
@click.option("--compare", default=None, help="comma-separated methods, shown side by side")
@click.option("--sparsity", type=float, default=0.95, show_default=True, help="in [0, 1)")
@click.option("--scope", default="global", show_default=True, help="global or per_tensor")
@click.option("--include-bias", is_flag=True, help="prune the cell's biases too")
@click.option("--data", default="gaussian", show_default=True,
              help="the scoring batch: gaussian or seq-mnist (NOTE [CLI data])")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="seq-mnist: folder with the full data set (default: the bundled data)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="mask file (.pt)")
@click.option("--horizon", type=int, default=None, help="jacobian: U")
@click.option("--estimator", default=None, help="jacobian: ones, transpose, frobenius, hutchinson")
@click.option("--through-time/--no-through-time", default=None, help="jacobian")
@click.option("--normalize", default=None, help="jacobian, snip, foresight: gamma or none")
@click.option("--gamma-inputs", default=None, help="gaussian, data or authors")
@click.option("--gamma-state", default=None, help="zero or authors")
@click.option("--discount", type=float, default=None, help="jacobian: λ in (0, 1]")
@click.option("--balance", default=None, help="none, gate or block")
@click.option("--iterations", type=int, default=None, help="synflow: rounds")
def prune_cmd(cell, input_size, hidden, classes, steps, batch_size, init, method, compare,
              sparsity, scope, include_bias, data, data_root, seed, device, out, **flags) -> None:
    """Score a freshly initialized model, keep the top weights, print where they sit."""
    import torch
    from tabulate import tabulate

    from .anatomy import anatomy_summary, mask_anatomy
    from .errors import check_positive_int, fail
    from .masks import density_from_sparsity, save_masks, topk_mask
    from .models import SequenceClassifier
    from .scores import METHODS, OPTIONS, compute_scores

    fn = "prune"
    methods = [m.strip() for m in compare.split(",")] if compare else [method]
    for m in methods:
        if m not in METHODS:
            raise fail(fn, f"methods among {', '.join(METHODS)}", repr(m))
    if len(set(methods)) != len(methods):
        raise fail(fn, "distinct methods in --compare", compare)
    if device not in ("auto", "cpu", "cuda"):
        raise fail(fn, "--device auto, cpu or cuda", repr(device))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        check_positive_int(fn, name, v)
    density = density_from_sparsity(sparsity)
    if device == "cuda" and not torch.cuda.is_available():
        raise fail(fn, "--device cuda on a machine with CUDA", "no CUDA device")
    given = {k: v for k, v in flags.items() if v is not None}

    def accepts(m: str, k: str) -> bool:  # γ options only reach methods that normalize by γ
        return k in OPTIONS[m] and (not k.startswith("gamma_") or given.get(
            "normalize", OPTIONS[m].get("normalize")) == "gamma")

    unused = [k for k in given if not any(accepts(m, k) for m in methods)]
    if unused:
        raise fail(fn, f"score options that apply to {', '.join(methods)}",
                   ", ".join("--" + k.replace("_", "-") for k in unused))

    model = SequenceClassifier(cell, input_size, hidden, classes, init=init, seed=seed,
                               device=device)
    xs, ys = _cli_batch(fn, data, data_root, batch_size, steps, input_size, classes, seed)
    xs, ys = xs.to(device), ys.to(device)
    masks, tables, summaries = {}, {}, {}
    for m in methods:
        opts = {k: v for k, v in given.items() if accepts(m, k)}
        if m == "synflow":
            opts["density"] = density
        scores = compute_scores(m, model, (xs, ys), generator=torch.Generator().manual_seed(
            seed + 2), include_bias=include_bias, **opts)
        masks[m] = topk_mask(scores, density, scope=scope)
        tables[m] = mask_anatomy(model.cell, masks[m], input_size, hidden)
        summaries[m] = anatomy_summary(model.cell, masks[m], input_size, hidden)

    first = tables[methods[0]]
    kept, total = int(first["kept"].sum()), int(first["total"].sum())
    click.echo(f"{model.cell.name} D={input_size} N={hidden}, init {init}, data {data} "
               f"(B={batch_size}, T={steps}), seed {seed}, sparsity {sparsity}: keep {kept:,} of "
               f"{total:,} {'entries' if include_bias else 'weights'} ({scope})")
    rows = [[r.gate, r.block, r.total] + [f"{tables[m].loc[i, 'kept']:,} "
                                            f"({tables[m].loc[i, 'fraction']:.3f})"
                                            for m in methods]
            for i, r in first.iterrows()]
    names = {"ir_ratio": "I/R ratio", "dense_ir_ratio": "dense I/R ratio",
             "gate_imbalance": "gate imbalance", "dead_units": "dead units",
             "in_degree_mean": "in-degree mean", "in_degree_min": "in-degree min",
             "in_degree_max": "in-degree max"}
    for key, label in names.items():
        rows.append([label, "", ""] + [f"{summaries[m][key]:.4g}" for m in methods])
    click.echo(tabulate(rows, headers=["gate", "block", "total"] + [f"{m} kept (fraction)"
                                                                     for m in methods]))
    if out is not None:
        config = {"cell": model.cell.name, "input_size": input_size, "hidden_size": hidden,
                  "classes": classes, "steps": steps, "batch_size": batch_size, "init": init,
                  "sparsity": sparsity, "density": density, "scope": scope,
                  "include_bias": include_bias, "data": data, "seed": seed, "options": given}
        path = save_masks(out, masks, config)
        click.echo(f"wrote {path}")


# --------------------------------------------------------------------------------------------------
# spectrumkit train (issue 5)
# --------------------------------------------------------------------------------------------------

# NOTE [train command]
# --method dense trains the full model; l2 is the paper's iterative magnitude prune-retrain; every
# other method is a pruning-at-initialization score (spectrumkit.scores.METHODS, default options):
# the scoring batch is --score-batch examples of the training split drawn by a generator seeded
# --seed + 1, the score's own randomness comes from --seed + 2 (as NOTE [prune command]), and the
# exact-K mask keeps round((1 - sparsity) · n) of the cell's weights, held exactly during training.
_TRAIN_METHODS = ("dense", "l2", "jacobian", "snip", "foresight", "magnitude", "random", "synflow")


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
              help="dense, l2 (iterative magnitude prune-retrain, the paper's baseline), or a "
                   "score that prunes at initialization (NOTE [train command])")
@click.option("--score-batch", type=int, default=64, show_default=True,
              help="examples in the scoring batch of a pruning score")
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
              score_batch, epochs, steps, batch_size, lr, optimizer, clip, eval_every, stage_steps,
              embed_size, device, seed, threads, resume, progress, out) -> None:
    """Train one model and write OUT/history.csv and OUT/metrics.json (atomically)."""
    import json
    import math
    from pathlib import Path

    import torch

    from .data import load_task
    from .errors import check_positive_int, check_unit_interval, fail
    from ._io import write_atomic
    from .train import make_model, train, train_l2_iterative

    fn = "spectrumkit train"
    check_unit_interval(fn, "--sparsity", sparsity, low_open=False, high_open=True)
    if method == "dense" and sparsity != 0:
        raise fail(fn, "--sparsity 0 with --method dense", sparsity)
    if method != "dense" and sparsity == 0:
        raise fail(fn, f"--sparsity > 0 with --method {method}", sparsity)
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
    elif method != "l2":
        from .data import sample_batch
        from .evaluation import resolve_device
        from .masks import topk_mask
        from .scores import compute_scores

        check_positive_int(fn, "--score-batch", score_batch)
        dev = resolve_device(device)
        model.to(dev)
        batch = sample_batch(task.train, score_batch, generator=torch.Generator().manual_seed(
            seed + 1), bptt=task.bptt, device=dev)
        density = round(1.0 - sparsity, 12)
        opts = {"density": density} if method == "synflow" else {}
        scores = compute_scores(method, model, batch,
                                generator=torch.Generator().manual_seed(seed + 2), **opts)
        result = train(model, task, mask=topk_mask(scores, density), **common)
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


# --------------------------------------------------------------------------------------------------
# ---- figures (issue 7) -----------------------------------------------------------------------------
@main.command("figures")
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--format", "formats", default="pdf,png", show_default=True,
              help="Comma-separated figure formats among pdf, png, svg.")
@click.option("--only", default=None, metavar="NAME[,NAME]",
              help="Render only these declared figures ('table' for the tables).")
def figures_cmd(results_dir: str, formats: str, only: str | None) -> None:
    """Regenerate a study's figures and tables from its stored results (nothing is recomputed).

    RESULTS_DIR is one study's folder OUT/<study> (holding spec.json and trials/), or OUT itself,
    in which case every study folder inside it is rendered.
    """
    from .figures.render import render_all

    names = None if only is None else [n.strip() for n in only.split(",") if n.strip()]
    written = render_all(results_dir, only=names, formats=formats)
    for study, paths in written.items():
        for p in paths:
            click.echo(str(p))
    total = sum(len(p) for p in written.values())
    click.echo(f"wrote {total} files for {len(written)} "
               f"{'study' if len(written) == 1 else 'studies'}", err=True)


# --------------------------------------------------------------------------------------------------
# spectrumkit spectrum  (issue 3: per-step Jacobian spectra)
# --------------------------------------------------------------------------------------------------


def _parse_steps(text: str) -> int | list[int] | None:
    """``last:U`` -> U (the last U steps), ``all`` -> None, ``3,7,28`` -> [3, 7, 28]."""
    from .errors import SpectrumkitError

    t = text.strip()
    try:
        if t == "all":
            return None
        if t.startswith("last:"):
            return int(t[5:])
        return [int(v) for v in t.split(",")]
    except ValueError:
        raise SpectrumkitError("spectrum: expected --steps as last:U, all, or a comma list of "
                               f"1-based steps such as 1,5,28, got {text!r}") from None


@main.command("spectrum")
@click.option("--cell", required=True, help="a built-in cell (see 'spectrumkit cells')")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden", type=int, default=400, show_default=True, help="N")
@click.option("--init", "init_scheme", default="glorot", show_default=True,
              help="initialization scheme, e.g. glorot, normal:0.1, uniform:0,0.1")
@click.option("--batch", type=int, default=64, show_default=True, help="B")
@click.option("--seq-len", type=int, default=28, show_default=True, help="T")
@click.option("--steps", "steps_text", default="last:4", show_default=True,
              help="last:U, all, or a comma list of 1-based steps")
@click.option("--data", type=click.Choice(_CLI_DATA), default="gaussian", show_default=True,
              help="gaussian (every entry i.i.d. N(0, 1)) or seq-mnist (NOTE [CLI data])")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="seq-mnist: folder with the full data set (default: the bundled data)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="params drawn from --seed, the data from --seed + 1")
@click.option("--method", type=click.Choice(["auto", "closed_form", "jacrev", "jacfwd"]),
              default="auto", show_default=True)
@click.option("--block", type=click.Choice(["full", "hh"]), default="full", show_default=True,
              help="full state Jacobian, or its h->h block (LSTMs)")
@click.option("--chunk-size", type=int, default=None,
              help="steps per streamed chunk [default: fit 256 MiB]")
@click.option("--bins", type=int, default=50, show_default=True)
@click.option("--near-zero", type=float, default=1e-2, show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True)
@click.option("--device", default="auto", show_default=True,
              help="auto (cuda if available), cpu, cuda or cuda:K")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="folder for spectrum.csv, histogram.csv and histogram.{pdf,png}")
def spectrum_cmd(cell, input_size, hidden, init_scheme, batch, seq_len, steps_text, data, data_root,
                 seed,
                 method, block, chunk_size, bins, near_zero, dtype, device, out) -> None:
    """Singular-value spectra of the per-step Jacobians of a freshly initialized cell.

    Prints the per-step summary table and writes DIR/spectrum.csv (one row per step),
    DIR/histogram.csv (pooled counts) and the histogram figure DIR/histogram.pdf and .png.
    """
    from pathlib import Path

    import torch
    from tabulate import tabulate

    from . import figures
    from .cells import get
    from .errors import check_positive_int
    from .evaluation import resolve_device
    from .init import init_params
    from .spectra import spectrum
    from ._io import write_atomic

    fn = "spectrum"
    c = get(cell)
    for name, value in (("batch", batch), ("seq-len", seq_len)):
        check_positive_int(fn, name, value)
    dev = resolve_device(device)
    dt = getattr(torch, dtype)
    params = init_params(c, input_size, hidden, init_scheme, seed=seed, dtype=dt, device=dev)
    xs, _ = _cli_batch(fn, data, data_root, batch, seq_len, input_size, 10, seed, dtype=dt)
    xs = xs.transpose(0, 1).contiguous().to(dev)                   # (T, B, D), NOTE [CLI data]
    sp = spectrum(c, params, xs, steps=_parse_steps(steps_text), method=method, block=block,
                  chunk_size=chunk_size, bins=bins, near_zero=near_zero)

    click.echo(f"{cell}  D={input_size} N={hidden} init={init_scheme} B={batch} T={seq_len} "
               f"data={data} seed={seed} block={block} dtype={dtype} device={dev}")
    click.echo(tabulate(sp.table, headers="keys", floatfmt=".4g", tablefmt="simple"))
    click.echo("pooled: " + ", ".join(f"{k}={v:.4g}" for k, v in sp.pooled.items()))

    folder = Path(out)
    h = sp.histogram
    rows = ["left,right,count"] + [f"{a!r},{b!r},{int(n)}" for a, b, n in
                                   zip(h.edges[:-1].tolist(), h.edges[1:].tolist(), h.counts)]
    hist_csv = ("\n".join(rows) + "\n").encode()
    written = [
        write_atomic(folder / "spectrum.csv", lambda f: f.write(sp.table.to_csv().encode())),
        write_atomic(folder / "histogram.csv", lambda f: f.write(hist_csv)),
    ]
    idx = list(sp.table.index)
    steps = (f"steps {idx[0]}..{idx[-1]}" if idx == list(range(idx[0], idx[-1] + 1))
             else "steps " + ",".join(map(str, idx)))
    with figures.style():
        fig, ax = figures.new_figure("single")
        what = f"{cell}{' h->h' if block == 'hh' else ''}, N={hidden}, {steps}"
        figures.sv_histogram(ax, h.counts, h.edges, label=what,
                             annotate_mean=sp.pooled["mean"])
        ax.legend()
        written += figures.save_figure(fig, folder / "histogram")
    for p in written:
        click.echo(f"wrote {p}")


# --------------------------------------------------------------------------------------------------
# ---- study (issue 6) -----------------------------------------------------------------------------
# `spectrumkit study NAME ...` runs a study; `study list` and `study show NAME` inspect them
# (issue 6). A first argument that is not a subcommand is a study name: `study NAME` = `study run
# NAME`.


class _StudyGroup(click.Group):
    """A group whose unknown first argument is a study name for the ``run`` subcommand."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "NAME [OPTIONS] | list | show NAME")


@main.group("study", cls=_StudyGroup, invoke_without_command=True)
@click.pass_context
def study_cmd(ctx: click.Context) -> None:
    """Run a study (`spectrumkit study NAME`), or list / show the studies.

    NAME is a shipped study (see `spectrumkit study list`) or a path to a study TOML file.
    Results go to OUT/NAME/ and finished trials are never run again.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@study_cmd.command("list")
def study_list_cmd() -> None:
    """List the shipped studies with their trial counts per preset."""
    from .study import list_studies, load_study

    rows = []
    for name in list_studies():
        s = {p: load_study(name, p) for p in ("quick", "paper")}
        first = " ".join(s["quick"].description.split())
        rows.append((name, len(s["quick"].configs), len(s["paper"].configs),
                     s["quick"].paper or "—", first[:60] + ("…" if len(first) > 60 else "")))
    click.echo(f"{'study':<15}{'quick':>6}{'paper':>7}  {'reference':<17}description")
    for name, q, p, ref, desc in rows:
        click.echo(f"{name:<15}{q:>6}{p:>7}  {ref:<17}{desc}")


@study_cmd.command("show")
@click.argument("name")
@click.option("--preset", default="quick", show_default=True, help="preset to resolve")
def study_show_cmd(name: str, preset: str) -> None:
    """Show a study resolved with a preset: grid, fixed settings, seeds, trials, report."""
    import json

    from .study import load_study

    s = load_study(name, preset)
    click.echo(f"study:       {s.name}   ({s.source})")
    click.echo(f"reference:   {s.paper or '—'}")
    click.echo(f"description: {' '.join(s.description.split())}")
    click.echo(f"presets:     {', '.join(s.presets)} (showing {s.preset})")
    click.echo(f"seeds:       {s.seeds}")
    click.echo(f"threads:     {s.threads or 'torch default'} per trial (local executor)")
    click.echo(f"trials:      {len(s.configs)}")
    click.echo("grid:")
    for k, v in s.grid.items():
        click.echo(f"  {k} = {json.dumps(v)}")
    click.echo("fixed:")
    for k, v in s.fixed.items():
        click.echo(f"  {k} = {json.dumps(v)}")
    t = s.report.table
    click.echo(f"table:       rows {t.rows}, cols {t.cols or '—'}, metric {t.metric}"
               + (f" ({t.paper_table})" if t.paper_table else ""))
    click.echo(f"figures:     {', '.join(s.report.figures) or '—'}")


@study_cmd.command("run")
@click.argument("name")
@click.option("--preset", default="quick", show_default=True, help="quick (CPU, minutes) or paper")
@click.option("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="auto uses CUDA when present")
@click.option("--executor", type=click.Choice(["local", "process", "ray"]), default="local",
              show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="process pool size")
@click.option("--threads", type=int, default=None,
              help="torch threads per trial (default: the preset's; else torch's own setting "
                   "for local, cores / workers for process, --cpus-per-trial for Ray)")
@click.option("--out", default="results", show_default=True, help="results root (OUT/NAME/)")
@click.option("--retry-failed", is_flag=True, help="run failed trials again")
@click.option("--ray-address", default=None, help="Ray cluster address (default: start locally)")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True, help="Ray only")
@click.option("--gpus-per-trial", type=float, default=0.0, show_default=True,
              help="Ray only; fractional shares one GPU")
@click.option("--data-root", default=None, help="folder with the full data set (default: bundled)")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="draw the study's figures at the end")
def study_run_cmd(name: str, preset: str, seeds: int | None, device: str, executor: str,
                  workers: int, threads: int | None, out: str, retry_failed: bool, ray_address: str | None,
                  cpus_per_trial: float, gpus_per_trial: float, data_root: str | None,
                  figures: bool) -> None:
    """Run study NAME; finished trials are skipped. Ends with the summary table and the paths."""
    import warnings

    from .study import StudyWarning, run_study

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"warning: {' '.join(str(message).split())}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", StudyWarning)
        warnings.showwarning = show
        run = run_study(name, preset=preset, seeds=seeds, device=device, executor=executor,
                        workers=workers, threads=threads, out=out, retry_failed=retry_failed,
                        ray_address=ray_address, cpus_per_trial=cpus_per_trial,
                        gpus_per_trial=gpus_per_trial, data_root=data_root,
                        announce=lambda msg: click.echo(msg, err=True))
    paths = list(run.paths)
    # --- figures (issue 7) -------------------------------------------------------------------
    # spectrumkit.figures.render(study_dir, only=None, formats=("pdf", "png")) draws the figures
    # the study declares (and its paper-style tables) from the stored results. Redrawn only when
    # trials ran or nothing was drawn yet.
    if figures:
        from .figures import render

        fig_dir = run.dir / "figures"
        if run.ran or not fig_dir.is_dir() or not any(fig_dir.iterdir()):
            paths += render(run.dir, only=None, formats=("pdf", "png"))
        else:
            paths += sorted(fig_dir.iterdir())
    # -------------------------------------------------------------------------------------------
    st = run.statuses
    click.echo(f"{run.study.name} ({run.study.preset}): {run.total} trials, {run.already_done} "
               f"already done, {run.ran} run now; ok {st['ok']}, diverged {st['diverged']}, "
               f"failed {st['failed']}; {run.seconds:.1f} s")
    for key, err in run.failed[:5]:
        click.echo(f"  failed {key[:12]}: {err}  (log: {run.dir / 'logs' / (key + '.log')})")
    if len(run.failed) > 5:
        click.echo(f"  ... and {len(run.failed) - 5} more failed (--retry-failed reruns them)")
    click.echo("")
    click.echo(run.table())
    click.echo("")
    click.echo("wrote:")
    for p in paths:
        click.echo(f"  {p}")


if __name__ == "__main__":  # pragma: no cover
    main()
