"""Benchmark the per-step Jacobian engines and the streamed spectra.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_jacobians.py            # full (several minutes on 2 cores)
    PYTHONPATH=. python benchmarks/bench_jacobians.py --quick    # a subset, about a minute
    PYTHONPATH=. python benchmarks/bench_jacobians.py --threads 1 --limit-only   # table 0 alone

Four tables, every ratio measured side by side in this one run (float32, B = 64, D = 28):

0. The memory limit. A closed-form step Jacobian does O(G) arithmetic per entry, so its floor is
   writing B·S² numbers. For every built-in cell at N = 400: ``step_jacobians(..., steps=1)`` of a
   4-step sequence (closed form; it unrolls the sequence first), the unroll alone, a copy of a
   (B, S, S) tensor of the same size (``dst.copy_(src)``, both preallocated), the same call with
   the states passed in (no unroll inside), and the same call with ``method="jacrev"``, measured
   interleaved (a, b, c, d, a, b, ...) and summarized by medians of ``--repeats-limit`` rounds (at
   least 5). Printed: (closed form - unroll) / copy, the cost of the Jacobian alone in units of a
   copy (the call unrolls the T - 1 steps that J_T needs, the unroll column times all T), the call
   with the states given / copy (J's own cost: validation, terms and the writes), next to
   (jacrev - unroll) / copy and jacrev / closed form. As in a loop ``J = f()``, each call runs
   while the previous result is still held, and an output reuses the memory of one freed before
   (NOTE [Reused outputs]): before each timed call, an untimed call of the same kind frees one
   output of the size, as the previous step of such a loop would. The column "fresh output" is
   the same call with that cache emptied first (untimed), so its output is new memory whose pages
   the kernel maps and zeroes (the first call in a process). Load averages are printed
   at the start and the end. Then the 28-step GRU-400 check: ``step_jacobians(..., steps=1)`` against
   ``method="jacrev"`` on the same sequence, interleaved medians.

1. Engines. For each built-in cell and N in {100, 400}: the Jacobian of one step (the 4th of a
   4-step sequence, same params, inputs and states for every engine) by the closed form,
   vmap(jacrev), vmap(jacfwd) and the row-by-row reference; time ratios to the closed form and the
   max abs difference of each engine from the closed form. The reference makes one backward pass
   per (example, row): at N = 400 (and everywhere with --quick) it is timed on REF_EXAMPLES examples
   and its time is extrapolated linearly to B = 64 (rows marked "extrapolated"); its max abs
   difference is over those examples.
2. Streamed spectra. ``spectrum()`` (Jacobians + SVD + summaries + histogram, chunked) against raw
   ``torch.linalg.svdvals`` on the very same matrices, precomputed (last 4 of 28 steps, the paper's
   U = 4).
3. Memory of ``spectrum()`` at T = 784 (pixel-wise MNIST), N = 100, B = 64, chunk_size = 64 steps,
   in a fresh subprocess. By accounting, the larger of two phases: the loop (the closed form's one
   reused step buffer B·S², the one-step copy ``svdvals`` makes, the states (T+1)·B·S and the
   singular values U·B·S, float32; NOTE [Spectra one step at a time]) and the summaries (the
   singular values, their float64 copy and the copy ``np.median`` sorts; the states are dropped
   by then). Measured: the peak resident memory above the resident memory before the call (Linux
   VmHWM after resetting it through /proc/self/clear_refs), which adds allocator slack and pandas.
   On CUDA the measured number is torch.cuda.max_memory_allocated. The target, < 200 MB, is
   met when the measured figure is under it.
   Cells with S = N only (gru, rnn; --quick: gru on the last 128 steps): an LSTM has S = 2N = 200
   and its 50,176 SVDs of 200x200 take many minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import torch
from tabulate import tabulate

from spectrumkit.cells import get
from spectrumkit.init import init_params
from spectrumkit.jacobians import empty_cache, reference_jacobian, step_jacobians
from spectrumkit.spectra import spectrum
from spectrumkit import unroll

B, D = 64, 28
REF_EXAMPLES = 2
CELLS = ("rnn", "rnn_relu", "lstm", "peephole_lstm", "gru")
LIMIT_CELLS = ("rnn", "rnn_relu", "lstm", "peephole_lstm", "gru", "gru_cho")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int):
    """(best wall time in seconds over ``repeats`` calls, last result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        out = None
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def timed_pair(fa, fb, device: torch.device, repeats: int):
    """Best times of two functions measured alternately (a, b, a, b, ...), and their last results.

    Alternating keeps a change of machine load from landing on one side of the ratio only.
    """
    ta = tb = float("inf")
    ra = rb = None
    for _ in range(repeats):
        t, ra = timed(fa, device, 1)
        ta = min(ta, t)
        t, rb = timed(fb, device, 1)
        tb = min(tb, t)
    return ta, ra, tb, rb


def interleaved_medians(fns: dict, device: torch.device, rounds: int,
                        before: dict | None = None) -> dict[str, float]:
    """Median wall time of each function over ``rounds`` rounds; each round calls them all in turn
    (the order rotates every round), so a change of machine load lands on every one alike.

    ``before[name]``, when given, runs untimed right before each call of ``fns[name]``. As in a
    loop ``J = f()``, the previous call's result is still held while the next call runs.
    """
    names = list(fns)
    before = before or {}
    times: dict[str, list[float]] = {n: [] for n in names}
    for name in names:                                          # warm-up round
        before.get(name, lambda: None)()
        fns[name]()
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            before.get(name, lambda: None)()
            t, _ = timed(fns[name], device, 1)
            times[name].append(t)
    return {n: statistics.median(v) for n, v in times.items()}


def limit(cells, N: int, device: torch.device, rounds: int):
    """Table 0: each cell's closed form against a copy of its size, the unroll and jacrev."""
    rows = []
    for cell in cells:
        p, xs = setup(cell, N, 4, device)
        S = get(cell).state_size(N)
        src = torch.randn(B, S, S, device=device)
        dst = torch.empty_like(src).copy_(src)
        states = unroll(cell, p, xs)
        m = interleaved_medians({
            "copy": lambda: dst.copy_(src),
            "unroll": lambda: unroll(cell, p, xs),
            "closed": lambda: step_jacobians(cell, p, xs, steps=1),
            "given": lambda: step_jacobians(cell, p, xs, states=states, steps=1),
            "jacrev": lambda: step_jacobians(cell, p, xs, steps=1, method="jacrev"),
            "fresh": lambda: step_jacobians(cell, p, xs, steps=1),
        }, device, rounds, before={
            # an untimed call frees one output of the size, so the timed one reuses its memory
            "closed": lambda: step_jacobians(cell, p, xs, steps=1),
            "given": lambda: step_jacobians(cell, p, xs, states=states, steps=1),
            "fresh": empty_cache,
        })
        rows.append({
            "cell": cell, "N": N, "S": S, "copy ms": 1e3 * m["copy"],
            "unroll ms": 1e3 * m["unroll"], "closed form ms": 1e3 * m["closed"],
            "jacrev ms": 1e3 * m["jacrev"],
            "(closed - unroll) / copy": (m["closed"] - m["unroll"]) / m["copy"],
            "(fresh output - unroll) / copy": (m["fresh"] - m["unroll"]) / m["copy"],
            "closed (states given) / copy": m["given"] / m["copy"],
            "(jacrev - unroll) / copy": (m["jacrev"] - m["unroll"]) / m["copy"],
            "jacrev / closed": m["jacrev"] / m["closed"],
        })
        del src, dst, states
        print(f"  limit: {cell} N={N} done", file=sys.stderr, flush=True)
    return rows


def against_jacrev(N: int, T: int, device: torch.device, rounds: int) -> dict:
    """``step_jacobians(..., steps=1)`` on a T-step GRU sequence against vmap(jacrev)."""
    p, xs = setup("gru", N, T, device)
    m = interleaved_medians({
        "closed": lambda: step_jacobians("gru", p, xs, steps=1),
        "jacrev": lambda: step_jacobians("gru", p, xs, steps=1, method="jacrev"),
    }, device, rounds)
    return {"cell": "gru", "N": N, "T": T, "closed form ms": 1e3 * m["closed"],
            "jacrev ms": 1e3 * m["jacrev"], "jacrev / closed": m["jacrev"] / m["closed"],
            "target": ">= 15"}


def setup(cell: str, N: int, T: int, device: torch.device, seed: int = 0):
    p = init_params(cell, D, N, "glorot", seed=seed, device=device)
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(T, B, D, generator=g).to(device)
    return p, xs


def warm_up(device: torch.device) -> None:
    """First calls of torch.func and LAPACK pay one-off costs; pay them before timing."""
    for cell in CELLS:
        p, xs = setup(cell, 3, 2, device)
        for m in ("closed_form", "jacrev", "jacfwd"):
            step_jacobians(cell, p, xs[:, :2, :], method=m)
        spectrum(cell, p, xs[:, :2, :])


def engines(cells, sizes, device, repeats, quick):
    rows = []
    for N in sizes:
        for cell in cells:
            p, xs = setup(cell, N, 4, device)
            states = unroll(cell, p, xs)
            t = {}
            J = {}
            for m in ("closed_form", "jacrev", "jacfwd"):
                r = repeats if m == "closed_form" else max(2, repeats - 1)
                t[m], J[m] = timed(lambda: step_jacobians(cell, p, xs, states=states, steps=[4],
                                                          method=m), device, r)
            nref = REF_EXAMPLES if (quick or N > 100) else B
            t_ref, R = timed(lambda: reference_jacobian(cell, p, xs[:, :nref],
                                                        states=states[:, :nref], steps=[4]),
                             device, 1)
            t["ref"] = t_ref * B / nref
            cf = J["closed_form"]
            rows.append({
                "cell": cell, "N": N, "S": cf.shape[-1],
                "closed ms": 1e3 * t["closed_form"], "jacrev ms": 1e3 * t["jacrev"],
                "jacfwd ms": 1e3 * t["jacfwd"],
                "ref ms": f"{1e3 * t['ref']:.0f}" + ("" if nref == B else f" (extrapolated "
                                                      f"from {nref} ex.)"),
                "jacrev/closed": t["jacrev"] / t["closed_form"],
                "jacfwd/closed": t["jacfwd"] / t["closed_form"],
                "ref/closed": t["ref"] / t["closed_form"],
                "maxdiff jacrev": (J["jacrev"] - cf).abs().max().item(),
                "maxdiff jacfwd": (J["jacfwd"] - cf).abs().max().item(),
                "maxdiff ref": (R - cf[:, :nref]).abs().max().item(),
            })
            del J, R, cf
            print(f"  engines: {cell} N={N} done", file=sys.stderr, flush=True)
    return rows


def spectra(cells, sizes, device, repeats):
    rows = []
    for N in sizes:
        for cell in cells:
            p, xs = setup(cell, N, 28, device)
            J = step_jacobians(cell, p, xs, steps=4)
            r = repeats if J.shape[-1] <= 400 else 1    # S = 800 SVDs are slow: measured once
            t_spec, sp, t_raw, sv = timed_pair(lambda: spectrum(cell, p, xs, steps=4),
                                               lambda: torch.linalg.svdvals(J), device, r)
            rows.append({
                "cell": cell, "N": N, "matrices": J.shape[0] * J.shape[1], "S": J.shape[-1],
                "spectrum() s": t_spec, "raw svdvals s": t_raw, "spectrum/raw": t_spec / t_raw,
                "max |Δσ|": (sp.singular_values - sv.cpu()).abs().max().item(),
            })
            del J, sv, sp
            print(f"  spectra: {cell} N={N} done", file=sys.stderr, flush=True)
    return rows


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+) kB", f.read()).group(1))


def memory_child(cell: str, N: int, T: int, chunk: int, steps: int, device: str) -> None:
    """Run in a fresh process: one spectrum() call, print JSON with its peak memory."""
    dev = torch.device(device)
    p, xs = setup(cell, N, T, dev)
    S = get(cell).state_size(N)
    itemsize = xs.element_size()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        base = _status_kb("VmRSS") * 1024
        with open("/proc/self/clear_refs", "w") as f:   # reset VmHWM to the current RSS
            f.write("5")
    t0 = time.perf_counter()
    sp = spectrum(cell, p, xs, steps=steps, chunk_size=chunk)
    elapsed = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else _status_kb("VmHWM") * 1024)
    c = min(chunk, steps)
    step_J = B * S * S * itemsize / 1e6                 # one step's Jacobians
    states = (T + 1) * B * S * itemsize / 1e6
    sv = steps * B * S * itemsize / 1e6
    loop = 2 * step_J + states + sv                     # the buffer, svdvals' copy, states, σ
    summary = sv + 2 * 2 * sv                           # σ, its float64 copy, np.median's copy
    print(json.dumps({
        "cell": cell, "N": N, "S": S, "T": T, "B": B, "steps": steps, "chunk": c,
        "loop MB (accounted)": loop, "summaries MB (accounted)": summary,
        "measured peak MB": (peak - base) / 1e6, "time s": elapsed,
        "pooled mean σ": sp.pooled["mean"],
    }))


def memory(cells, T, steps, device):
    rows = []
    for cell in cells:
        out = subprocess.run(
            [sys.executable, __file__, "--threads", str(torch.get_num_threads()),
             "--_memory-child", cell, "100", str(T), "64", str(steps), str(device)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["target"] = "< 200 MB"
        rows.append(row)
        print(f"  memory: {cell} done", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a subset, about a minute")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads for this run and the memory subprocess "
                         "(default: torch's choice)")
    ap.add_argument("--limit-only", action="store_true",
                    help="only table 0 (the memory limit) and the 28-step check against jacrev")
    ap.add_argument("--repeats-limit", type=int, default=7,
                    help="interleaved rounds of table 0 and the jacrev check (at least 5)")
    ap.add_argument("--_memory-child", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    if a._memory_child:
        cell, N, T, chunk, steps, device = a._memory_child
        memory_child(cell, int(N), int(T), int(chunk), int(steps), device)
        return
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"device {device}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"float32, B={B}, D={D}, load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"mode {'quick' if a.quick else 'full'}")
    fmt = dict(headers="keys", floatfmt=".3g", tablefmt="github")
    warm_up(device)
    rounds = max(5, a.repeats_limit)
    lim = limit(LIMIT_CELLS, 400, device, rounds)
    print(f"\n## 0. Closed form at the memory limit (steps=1 of 4, B=64, N=400; medians of "
          f"{rounds} interleaved rounds)\n")
    print(tabulate(lim, **fmt))
    jr = against_jacrev(400, 28, device, rounds)
    print(f"\nsteps=1 of a 28-step GRU-400 sequence, medians of {rounds} interleaved rounds:\n")
    print(tabulate([jr], **fmt))
    if a.limit_only:
        load1 = os.getloadavg()
        print(f"\nload average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
        return

    if a.quick:
        eng = engines(CELLS, [100], device, 2, quick=True)
        eng += engines(("lstm", "gru"), [400], device, 2, quick=True)
    else:
        eng = engines(CELLS, [100, 400], device, 3, quick=False)
    print("\n## 1. Jacobian engines (one step, B=64): time and max abs difference from the "
          "closed form\n")
    print(tabulate(eng, **fmt))

    sp_rows = (spectra(("gru",), [100, 400], device, 2) if a.quick
               else spectra(CELLS, [100, 400], device, 3))
    print("\n## 2. Streamed spectrum() vs raw torch.linalg.svdvals on the same matrices "
          "(last 4 of 28 steps, B=64)\n")
    print(tabulate(sp_rows, **fmt))

    steps = 128 if a.quick else 784
    mem = memory(("gru",) if a.quick else ("gru", "rnn"), 784, steps, device)
    print(f"\n## 3. spectrum() memory at T=784, N=100, B=64, chunk_size=64"
          f"{' (quick: last 128 of the 784 steps)' if a.quick else ''}\n")
    print(tabulate(mem, **fmt))
    load1 = os.getloadavg()
    print(f"\nload average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} "
          f"(> {os.cpu_count()} means the timings above shared the CPUs with other work)")


if __name__ == "__main__":
    main()
