"""Masked vs dense training step: same model, same data, same code path (``spectrumkit.train``).

    PYTHONPATH=. python benchmarks/bench_train.py [--hidden-size 128 400] [--repeats 7] [--steps 30]

For each width, a GRU classifier on row seq-MNIST (D = 28, T = 28, B = 64) is trained for
``--steps`` steps by :func:`spectrumkit.train.train`, once dense and once with a 95 %-sparse random
mask, alternating dense/masked ``--repeats`` times so that machine noise hits both alike. The time
of a step is the gap between two consecutive per-step callbacks (forward, backward, gradient mask,
Adam step, parameter mask), the first step of each run excluded. The table gives samples per second
(median over repeats of B / median step time) and the ratio masked / dense step time, per repeat
and as the median. Target: masked ≤ 1.15 × dense.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tabulate import tabulate

from spectrumkit.config import TrainingConfig
from spectrumkit.data import load_task
from spectrumkit.training import make_model, train


def step_times(task, hidden, mask_density, steps, device, seed=0) -> list[float]:
    model = make_model(task, "gru", hidden, init="torch", seed=seed)
    mask = None
    if mask_density is not None:
        g = torch.Generator().manual_seed(seed)
        mask = {k: torch.rand(p.shape, generator=g) < mask_density
                for k, p in model.prunable().items()}
    stamps: list[float] = []

    def tick(info):
        if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    train(model, task, training=TrainingConfig(steps=steps, batch_size=64, eval_every=10 ** 9), mask=mask, seed=seed, device=device, callback=tick, progress=False)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden-size", type=int, nargs="+", default=[128, 400])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # 64·steps training examples, a 64-example validation split evaluated once at the end.
    task = load_task("seq-mnist", limit=64 * args.steps, val_limit=64)
    rows = []
    for hidden in args.hidden_size:
        dense, masked, ratios = [], [], []
        for _ in range(args.repeats):
            d = statistics.median(step_times(task, hidden, None, args.steps, args.device))
            m = statistics.median(step_times(task, hidden, 0.05, args.steps, args.device))
            dense.append(d)
            masked.append(m)
            ratios.append(m / d)
        rows.append([f"GRU-{hidden}", f"{64 / statistics.median(dense):,.0f}",
                     f"{64 / statistics.median(masked):,.0f}", f"{statistics.median(ratios):.3f}",
                     " ".join(f"{r:.2f}" for r in ratios),
                     "PASS" if statistics.median(ratios) <= 1.15 else "FAIL"])
    print(f"device={args.device} threads={torch.get_num_threads()} B=64 T=28 D=28 "
          f"steps={args.steps} repeats={args.repeats} (interleaved dense/masked)")
    print(tabulate(rows, headers=["model", "dense samples/s", "masked samples/s",
                                  "masked/dense step time (median)", "per repeat",
                                  "≤ 1.15×"], tablefmt="github"))


if __name__ == "__main__":
    main()
