"""Benchmark the dense and the matrix-free (Lanczos / SLQ) spectra side by side.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_spectra.py --threads 1              # the full table
    PYTHONPATH=. python benchmarks/bench_spectra.py --threads 1 --batch 16   # smaller B
    PYTHONPATH=. python benchmarks/bench_spectra.py --threads 1 --widths 400 --no-large

What it measures (float32, D = 28, one step: the last of a T = 4 sequence, Gaussian inputs,
glorot init, params from seed 0):

1. GRU at N = 400, 800, 1600 (``--widths``), B = 64 (``--batch``): ``spectrum()`` with the dense
   closed-form engine (J formed, ``svdvals``) against ``spectrum(method="lanczos")`` with the
   default :class:`~spectrumkit.spectra.LanczosOptions` (k = 5, 64 Lanczos steps, 4 probes per
   example). Printed: both times and their ratio, both peak memories and their ratio, the largest
   relative error of the top singular value over the B examples, the relative error of the mean
   singular value σ̄, the L1 distance of the two histograms on the dense histogram's bins, and how
   many top-5 Ritz values converged.
2. ``--large``: the matrix-free path alone on an LSTM of N = 2000 (S = 4000), the paper's language
   model width: time and peak memory (target: under 1.5 GB), convergence of the top 5. The dense
   path is not run there (64 · 4000² float32 = 4.1 GB of Jacobians alone).

Peak memory: every case runs in a fresh subprocess; after the params, inputs and states exist, it
resets the kernel's high-water mark (``/proc/self/clear_refs`` ← 5, Linux) and reads ``VmHWM`` from
``/proc/self/status`` after the call, so "peak MB" is the peak resident memory of the process
during the spectrum call minus the resident memory just before it (what the call itself added:
Jacobians, SVD workspace, Lanczos bases, autograd residuals, allocator slack). ``VmHWM`` alone
(the process's whole peak, including Python and torch themselves) is printed too. Where
``clear_refs`` is not writable the whole-process ``ru_maxrss`` is used and the column says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

D, T = 28, 4


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(key)


def child(args: argparse.Namespace) -> None:
    """One case in this (fresh) process; prints one JSON line."""
    import numpy as np
    import torch

    from spectrumkit.init import init_params
    from spectrumkit.spectra import spectrum
    from spectrumkit import unroll

    torch.set_num_threads(args.threads)
    p = init_params(args.cell, D, args.hidden_size, "glorot", seed=0, dtype=torch.float32)
    xs = torch.randn(T, args.batch, D, generator=torch.Generator().manual_seed(1))
    states = unroll(args.cell, p, xs)
    kw = dict(states=states, steps=[T])
    if args.method == "lanczos":
        kw.update(method="lanczos", seed=2)
        if args.hi is not None:                       # the dense histogram's range: same bins
            kw.update(value_range=(0.0, args.hi))
    else:
        kw.update(method="closed_form")
    spectrum(args.cell, p, xs[:, :2], steps=[T], **({"method": "lanczos", "seed": 2}
             if args.method == "lanczos" else {}))        # warm up (forward-AD import, kernels)
    mode = "VmHWM delta"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status_kb("VmRSS") * 1024
    except OSError:
        mode, base = "ru_maxrss (whole process)", 0
    t0 = time.perf_counter()
    sp = spectrum(args.cell, p, xs, **kw)
    elapsed = time.perf_counter() - t0
    if mode == "VmHWM delta":
        peak = _status_kb("VmHWM") * 1024 - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"time_s": elapsed, "peak_MB": peak / 1e6, "mode": mode,
           "process_peak_MB": _status_kb("VmHWM") * 1024 / 1e6,
           "top": sp.singular_values[0, :, 0].double().tolist(), "mean": sp.pooled["mean"],
           "edges": sp.histogram.edges.tolist(),
           "counts": np.asarray(sp.histogram.counts, dtype=np.float64).tolist()}
    if sp.matrix_free is not None:
        ev = sp.matrix_free.extremes
        out.update(top5_converged=int(ev.top_converged.sum()), top5_total=ev.top.numel(),
                   top_residual_max=float(ev.top_residual[..., 0].max()))
    print("RESULT " + json.dumps(out))


def run_case(cell: str, hidden: int, method: str, batch: int, threads: int,
             hi: float | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", "--cell", cell, "--hidden-size", str(hidden),
           "--method", method, "--batch", str(batch), "--threads", str(threads)]
    if hi is not None:
        cmd += ["--hi", repr(hi)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"case {cell} N={hidden} {method} failed:\n{r.stderr[-2000:]}")
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def l1_on_dense_bins(dense: dict, lanczos: dict) -> float | None:
    import numpy as np
    if dense["edges"] != lanczos["edges"]:
        raise SystemExit("bench_spectra: the two histograms do not share edges")
    c_d, c_l = np.asarray(dense["counts"], float), np.asarray(lanczos["counts"], float)
    return float(np.abs(c_d / c_d.sum() - c_l / c_l.sum()).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cell", default="gru", help=argparse.SUPPRESS)
    ap.add_argument("--hidden-size", type=int, default=400, help=argparse.SUPPRESS)
    ap.add_argument("--method", default="dense", help=argparse.SUPPRESS)
    ap.add_argument("--hi", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=64, help="B (default 64)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--widths", default="400,800,1600", help="GRU widths N (default 400,800,1600)")
    ap.add_argument("--no-large", action="store_true", help="skip the LSTM N = 2000 case")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    from tabulate import tabulate

    print(f"bench_spectra: python {platform.python_version()}, threads={args.threads}, "
          f"B={args.batch}, D={D}, one step (t={T}), float32, glorot, lanczos defaults "
          "(k=5, 64 steps, 4 probes per example)")
    rows = []
    for N in [int(v) for v in args.widths.split(",") if v]:
        d = run_case("gru", N, "dense", args.batch, args.threads)
        lz = run_case("gru", N, "lanczos", args.batch, args.threads, hi=d["edges"][-1])
        top_d, top_l = d["top"], lz["top"]
        err = max(abs(a - b) / b for a, b in zip(top_l, top_d))
        rows.append({
            "cell": "gru", "N=S": N, "dense s": d["time_s"], "lanczos s": lz["time_s"],
            "time ratio dense/lanczos": d["time_s"] / lz["time_s"],
            "dense peak MB": d["peak_MB"], "lanczos peak MB": lz["peak_MB"],
            "memory ratio dense/lanczos": d["peak_MB"] / max(lz["peak_MB"], 1e-9),
            "top σ max rel err": err, "σ̄ rel err": abs(lz["mean"] / d["mean"] - 1),
            "hist L1": l1_on_dense_bins(d, lz),
            "top-5 converged": f"{lz['top5_converged']}/{lz['top5_total']}"})
        print(json.dumps(rows[-1]), flush=True)
    if rows:
        print(tabulate(rows, headers="keys", floatfmt=".3g"))
        print(f"peak memory: {d['mode']} (resident memory added by the spectrum call)")
    if not args.no_large:
        lz = run_case("lstm", 2000, "lanczos", args.batch, args.threads)
        print(tabulate([{"cell": "lstm", "N": 2000, "S": 4000, "B": args.batch,
                         "lanczos s": lz["time_s"], "peak MB (call)": lz["peak_MB"],
                         "process peak MB": lz["process_peak_MB"],
                         "top-5 converged": f"{lz['top5_converged']}/{lz['top5_total']}",
                         "max top residual": lz["top_residual_max"], "σ̄": lz["mean"],
                         "target < 1500 MB": lz["process_peak_MB"] < 1500}],
                       headers="keys", floatfmt=".3g"))


if __name__ == "__main__":
    main()
