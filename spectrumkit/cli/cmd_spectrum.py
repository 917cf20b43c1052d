"""`spectrumkit spectrum`: per-step Jacobian spectra of a freshly initialized cell."""

from __future__ import annotations

from typing import Any

import click

from ..choices import JACOBIAN_BLOCKS, JACOBIAN_METHODS
from ._data import CLI_DATA, cli_batch
from ._vocabulary import (
    device_option,
    dtype_option,
    dumps,
    flags_in_message,
    json_option,
    resolve_device,
)


def _parse_steps(text: str) -> int | list[int] | None:
    """``last:U`` -> U (the last U steps), ``all`` -> None, ``3,7,28`` -> [3, 7, 28].

    >>> _parse_steps("last:4"), _parse_steps("all"), _parse_steps("3,7,28")
    (4, None, [3, 7, 28])
    """
    from ..errors import SpectrumkitError

    t = text.strip()
    try:
        if t == "all":
            return None
        if t.startswith("last:"):
            return int(t[5:])
        return [int(v) for v in t.split(",")]
    except ValueError:
        raise SpectrumkitError("spectrum: expected --jacobian-steps as last:U, all, or a comma "
                               f"list of 1-based steps such as 1,5,28, got {text!r}") from None


_OUTPUTS = ("spectrum.csv", "histogram.csv", "histogram.pdf", "histogram.png")


@click.command("spectrum")
@click.option("--cell", required=True, help="a built-in cell (see 'spectrumkit cells')")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden-size", "hidden", type=int, default=400, show_default=True, help="N")
@click.option("--init", "init_scheme", default="glorot", show_default=True,
              help="initialization scheme, e.g. glorot, normal:0.1, uniform:0,0.1")
@click.option("--spectrum-batch", "batch", type=int, default=64, show_default=True,
              help="B, the sequences the spectra are taken on")
@click.option("--seq-len", type=int, default=28, show_default=True, help="T")
@click.option("--jacobian-steps", "steps_text", default="last:4", show_default=True,
              help="the steps whose Jacobians are taken: last:U, all, or a comma list of "
                   "1-based steps")
@click.option("--data", type=click.Choice(CLI_DATA), default="gaussian", show_default=True,
              help="gaussian (every entry i.i.d. N(0, 1)) or seq-mnist (the bundled digits)")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="seq-mnist: folder with the full data set (default: the bundled data)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="params drawn from --seed, the data from --seed + 1")
@click.option("--method", type=click.Choice([*JACOBIAN_METHODS, "lanczos"]),
              default="auto", show_default=True,
              help="a dense engine (forms J), or lanczos: matrix-free SLQ density and extreme "
                   "singular values")
@click.option("--lanczos-top-k", "top_k", type=int, default=None,
              help="lanczos: extreme singular values per matrix [default: 5]")
@click.option("--lanczos-iterations", "iterations", type=int, default=None,
              help="lanczos: Lanczos steps per probe [default: 64]")
@click.option("--lanczos-probes", "probes", type=int, default=None,
              help="lanczos: probes per example [default: 4]")
@click.option("--lanczos-tol", "tol", type=float, default=None,
              help="lanczos: relative residual of a converged Ritz value [default: 1e-05]")
@click.option("--block", type=click.Choice(JACOBIAN_BLOCKS), default="full", show_default=True,
              help="full state Jacobian, or its h->h block (LSTMs)")
@click.option("--chunk-size", type=int, default=None,
              help="steps per streamed chunk [default: fit 256 MiB]")
@click.option("--bins", type=int, default=50, show_default=True)
@click.option("--near-zero", type=float, default=1e-2, show_default=True)
@dtype_option()
@device_option()
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="folder for spectrum.csv, histogram.csv and histogram.{pdf,png}")
@json_option("the per-step table, the pooled summary and the histogram")
def spectrum_cmd(cell, input_size, hidden, init_scheme, batch, seq_len, steps_text, data, data_root,
                 seed, method, top_k, iterations, probes, tol, block, chunk_size, bins, near_zero,
                 dtype, device, out, as_json) -> None:
    """Singular-value spectra of the per-step Jacobians of a freshly initialized cell.

    Prints the per-step summary table and writes DIR/spectrum.csv (one row per step),
    DIR/histogram.csv (pooled counts) and the histogram figure DIR/histogram.pdf and .png.
    With --method lanczos no Jacobian is formed: the same files hold the SLQ estimates (expected
    counts), the probes are drawn from --seed + 2, and one more line reports convergence.
    """
    import torch
    from tabulate import tabulate

    from .._io import check_output_dir
    from ..cells import count_params, get
    from ..errors import SpectrumkitError, check_memory_terms, check_positive_int, check_seed
    from ..init import init_params
    from ..spectra import spectrum

    fn = "spectrum"
    check_seed(fn, "--seed", seed)
    folder = check_output_dir(f"{fn} --out", out, files=_OUTPUTS)  # NOTE [Output paths]
    c = get(cell)
    for name, value in (("--spectrum-batch", batch), ("--seq-len", seq_len),
                        ("--hidden-size", hidden), ("--input-size", input_size)):
        check_positive_int(fn, name, value)
    dev = resolve_device(fn, device)
    dt = getattr(torch, dtype)
    S = c.state_size(hidden)
    check_memory_terms(fn, {  # NOTE [Memory terms]
        f"--hidden {hidden}: a cell and one step's Jacobians":
            count_params(c, input_size, hidden, include_bias=True) + batch * S * S,
        f"--seq-len {seq_len} (with --spectrum-batch {batch}): the (T, B, D) inputs and the "
        "(T, B, S) states": seq_len * batch * (input_size + S)}, dev, itemsize=dt.itemsize)
    params = init_params(c, input_size, hidden, init_scheme, seed=seed, dtype=dt, device=dev)
    xs, _ = cli_batch(fn, data, data_root, batch, seq_len, input_size, 10, seed, dtype=dt,
                       batch_flag="--spectrum-batch")
    xs = xs.transpose(0, 1).contiguous().to(dev)                   # (T, B, D), NOTE [CLI data]
    lanczos = {k: v for k, v in (("k", top_k), ("iterations", iterations), ("probes", probes),
                                 ("tol", tol)) if v is not None}
    if lanczos and method != "lanczos":
        flags = ", ".join("--lanczos-" + {"k": "top-k"}.get(k, k) for k in lanczos)
        raise SpectrumkitError(f"spectrum: expected {flags} only with --method lanczos, got "
                               f"--method {method}")
    extra = dict(lanczos=lanczos, seed=seed + 2) if method == "lanczos" else {}
    try:
        sp = spectrum(c, params, xs, steps=_parse_steps(steps_text), method=method, block=block,
                      chunk_size=chunk_size, bins=bins, near_zero=near_zero, **extra)
    except SpectrumkitError as e:  # speak in flags: '--lanczos-iterations', not 'iterations'
        raise SpectrumkitError(flags_in_message(str(e), {
            **{k: _LANCZOS_FLAGS[k] for k in lanczos}, "steps": "--jacobian-steps",
            "chunk_size": "--chunk-size", "near_zero": "--near-zero"})) from None
    written = _write(folder, sp, cell, hidden, block)
    if as_json:  # NOTE [JSON output] in cli/cmd_prune.py
        click.echo(dumps(spectrum_json(sp, dict(
            cell=cell, input_size=input_size, hidden_size=hidden, init=init_scheme,
            spectrum_batch=batch, seq_len=seq_len, jacobian_steps=steps_text, data=data,
            seed=seed, method=method, block=block, dtype=dtype, device=str(dev)), written)))
        return
    click.echo(f"{cell}  D={input_size} N={hidden} init={init_scheme} B={batch} T={seq_len} "
               f"data={data} seed={seed} block={block} dtype={dtype} device={dev}")
    click.echo(tabulate(sp.table, headers="keys", floatfmt=".4g", tablefmt="simple"))
    click.echo("pooled: " + ", ".join(f"{k}={v:.4g}" for k, v in sp.pooled.items()))
    if sp.matrix_free is not None:
        ev, o = sp.matrix_free.extremes, sp.matrix_free.options
        click.echo(f"lanczos: {o.iterations} steps x {o.probes} probes per example; top-{o.k} "
                   f"converged {int(ev.top_converged.sum())}/{ev.top_converged.numel()}, "
                   f"bottom-{o.k} {int(ev.bottom_converged.sum())}/"
                   f"{ev.bottom_converged.numel()} (relative residual <= {o.tol:g}); "
                   f"max residual of the top {float(ev.top_residual.max()):.2g}")

    for p in written:
        click.echo(f"wrote {p}")


#: The Lanczos options by their name in spectrumkit.spectra.LanczosOptions → their flags.
_LANCZOS_FLAGS = {"k": "--lanczos-top-k", "iterations": "--lanczos-iterations",
                  "probes": "--lanczos-probes", "tol": "--lanczos-tol"}


def _write(folder: Any, sp: Any, cell: str, hidden: int, block: str) -> list[Any]:
    """DIR/spectrum.csv, DIR/histogram.csv and the histogram figure, each written atomically."""
    from .. import figures
    from .._io import write_atomic

    h = sp.histogram
    count = (lambda n: repr(float(n))) if sp.matrix_free is not None else int  # SLQ: expected
    rows = ["left,right,count"] + [f"{a!r},{b!r},{count(n)}" for a, b, n in
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
        what = (f"{cell}{' h->h' if block == 'hh' else ''}, N={hidden}, {steps}"
                + (", SLQ" if sp.matrix_free is not None else ""))
        figures.sv_histogram(ax, h.counts, h.edges, label=what,
                             annotate_mean=sp.pooled["mean"])
        ax.legend()
        written += figures.save_figure(fig, folder / "histogram")
    return written


def spectrum_json(sp: Any, config: dict[str, Any], written: list[Any]) -> dict[str, Any]:
    """``spectrum --json``: the run's settings, the per-step table (one record per step, its
    ``step`` included), the pooled summary, the histogram (edges, counts) and, for lanczos, the
    convergence of the extreme values."""
    table = sp.table.reset_index()
    out: dict[str, Any] = {
        "config": config,
        "steps": [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
                  for row in table.to_dict(orient="records")],
        "pooled": {k: float(v) for k, v in sp.pooled.items()},
        "histogram": {"edges": [float(e) for e in sp.histogram.edges.tolist()],
                      "counts": [float(n) if sp.matrix_free is not None else int(n)
                                 for n in sp.histogram.counts]},
        "lanczos": None, "wrote": [str(p) for p in written]}
    if sp.matrix_free is not None:
        ev, o = sp.matrix_free.extremes, sp.matrix_free.options
        out["lanczos"] = {"top_k": o.k, "iterations": o.iterations, "probes": o.probes,
                          "tol": o.tol, "top_converged": int(ev.top_converged.sum()),
                          "bottom_converged": int(ev.bottom_converged.sum()),
                          "count": int(ev.top_converged.numel()),
                          "max_top_residual": float(ev.top_residual.max())}
    return out
