"""Time every pruning score on one batch and print each one's ratio to SNIP.

Setting of the paper's Table 6: a GRU with N=400, D=28, one batch of B=64 sequences of T=28 steps,
float32. Methods run interleaved (the order rotates every round) after one warm-up round, and each
row is the median over the rounds, so background load hits every method alike. The targets
are jacobian <= 1.0x SNIP and foresight <= 6x SNIP; the paper's Table 6 gives 1.03x and
3.5x.

Rows:
  snip                      |θ ⊙ ∇L| — the reference.
  jacobian                  the score with its defaults (the default recipe, DEFAULT_RECIPE).
  jacobian recipe=NAME      every recipe of spectrumkit.scores.RECIPES (legacy, paper, authors,
                            ...); "authors" differentiates χ through time (U back-propagations)
                            and has no cost target.
  jacobian (γ data)         recipe legacy with gamma_inputs="data": γ's forward pass doubles as
                            the state pass.
  jacobian (γ given)        γ precomputed once (compute_gamma) and passed as gamma=, the way one
                            initialization's normalized scores share it.
  γ alone                   compute_gamma with its own defaults (Eq. 7 over the batch's T steps).
  jacobian through_time     through_time=True.
  foresight, snip (norm.)   Foresight, and SNIP divided by |γ|.
  magnitude, random         |θ|, U(0, 1).
  synflow                   100 rounds (own, fewer repeats: --synflow-repeats).

Run:  PYTHONPATH=. python benchmarks/bench_scores.py [--repeats 9] [--device cpu] [--threads 1]
      [--only 'jacobian,jacobian recipe=authors'] [--synflow-repeats 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tabulate import tabulate

from spectrumkit.models import SequenceClassifier
from spectrumkit.scores import DEFAULT_RECIPE, RECIPES, compute_gamma, compute_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--synflow-repeats", type=int, default=3)
    ap.add_argument("--hidden-size", type=int, default=400)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--only", default=None,
                    help="comma-separated rows to time besides snip (e.g. 'jacobian,jacobian "
                         "recipe=authors'); --synflow-repeats 0 skips synflow")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else args.device
    D, N, B, T, C = 28, args.hidden_size, 64, 28, 10
    model = SequenceClassifier("gru", D, N, C, seed=0, device=device)
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(B, T, D, generator=g).to(device),
             torch.randint(0, C, (B,), generator=g).to(device))

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(2)

    d = RECIPES[DEFAULT_RECIPE].score  # the default recipe's γ, computed once
    gamma = compute_gamma(model, batch, generator=gen(), batch_size=64,
                          inputs=d["gamma_inputs"], state=d["gamma_state"],
                          steps=d["gamma_steps"], sequences=d["gamma_sequences"],
                          readout=d["gamma_readout"], objective=d["gamma_objective"],
                          estimator=d["estimator"])
    cases = {
        "snip": lambda: compute_scores("snip", model, batch),
        "jacobian": lambda: compute_scores("jacobian", model, batch, generator=gen()),
        "jacobian (γ data)": lambda: compute_scores("jacobian", model, batch, recipe="legacy",
                                                    gamma_inputs="data"),
        "jacobian (γ given)": lambda: compute_scores("jacobian", model, batch, gamma=gamma),
        "γ alone": lambda: compute_gamma(model, batch, generator=gen()),
        "jacobian through_time": lambda: compute_scores("jacobian", model, batch,
                                                        generator=gen(), through_time=True),
        **{f"jacobian recipe={r}": (lambda r=r: compute_scores("jacobian", model, batch,
                                                               generator=gen(), recipe=r))
           for r in RECIPES},
        "foresight": lambda: compute_scores("foresight", model, batch),
        "snip (norm.)": lambda: compute_scores("snip", model, batch, generator=gen(),
                                               normalize="gamma"),
        "magnitude": lambda: compute_scores("magnitude", model, batch),
        "random": lambda: compute_scores("random", model, batch, generator=gen()),
    }

    def timed(f) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        f()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    if args.only:
        keep = {"snip", *(n.strip() for n in args.only.split(","))}
        unknown = sorted(keep - set(cases))
        if unknown:
            ap.error(f"--only: unknown rows {unknown}; rows: {list(cases)}")
        cases = {n: f for n, f in cases.items() if n in keep}
    names = list(cases)
    for name in names:  # warm-up (first torch.func.jvp call loads its decompositions)
        cases[name]()
    times = {n: [] for n in names}
    for r in range(args.repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(timed(cases[name]))
    if args.synflow_repeats > 0:
        syn = lambda: compute_scores("synflow", model, batch, density=0.05)  # noqa: E731
        syn()
        times["synflow"] = []
        for _ in range(args.synflow_repeats):  # interleaved with SNIP for its own ratio
            times["synflow"].append(timed(syn))
            times["snip"].append(timed(cases["snip"]))

    snip = statistics.median(times["snip"])
    rows = [[n, f"{statistics.median(t) * 1e3:.1f}", f"{statistics.median(t) / snip:.2f}x",
             len(t)] for n, t in times.items()]
    print(f"GRU D={D} N={N}, B={B}, T={T}, float32, {device}, "
          f"{torch.get_num_threads()} threads; median of interleaved rounds")
    print(tabulate(rows, headers=["method", "ms", "/ SNIP", "rounds"]))
    verdict = {True: "met", False: "NOT met"}
    targets = []
    if "jacobian" in times:
        r = statistics.median(times["jacobian"]) / snip
        targets.append(f"jacobian (default recipe {DEFAULT_RECIPE!r}) <= 1.0x SNIP: {r:.2f}x "
                       f"({verdict[r <= 1.0]})")
    if "foresight" in times:
        r = statistics.median(times["foresight"]) / snip
        targets.append(f"foresight <= 6x SNIP: {r:.2f}x ({verdict[r <= 6.0]})")
    if targets:
        print("targets: " + "; ".join(targets))


if __name__ == "__main__":
    main()
