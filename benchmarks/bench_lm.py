"""Full vs sampled softmax: one training step of the LSTM language model, side by side.

    PYTHONPATH=. python benchmarks/bench_lm.py --threads 1 [--vocab 100000] [--embed 400]
        [--hidden-size 512] [--samples 1000] [--batch 32] [--bptt 35] [--repeats 3]

A step is what :func:`spectrumkit.train.train` does per window: ``model.train_loss`` (embedding,
LSTM unroll, then the full softmax over V words, or the sampled softmax with S log-uniform
candidates, NOTE [Sampled softmax]), backward, and an Adam step over the trainable parameters
(the embedding is frozen, as in the paper). The two models have the same shapes and weights; the
runs alternate full / sampled ``--repeats`` times (after one warm-up step each) so that machine
noise hits both alike. Prints the median step time of each and the ratio full / sampled.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tabulate import tabulate

from spectrumkit.models import LanguageModel


def one_step(model: LanguageModel, opt: torch.optim.Optimizer, batch, g: torch.Generator) -> float:
    t0 = time.perf_counter()
    loss, _ = model.train_loss(batch, generator=g)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=100_000)
    ap.add_argument("--embed", type=int, default=400)
    ap.add_argument("--hidden-size", type=int, default=512)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=35)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    V, E, N = args.vocab, args.embed, args.hidden_size
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, V, (args.batch, args.bptt + 1), generator=g)
    batch = (tokens[:, :-1], tokens[:, 1:])
    runs = {}
    for name, samples in (("full", None), ("sampled", args.samples)):
        model = LanguageModel("lstm", V, E, N, seed=0, init="he", softmax_samples=samples)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        runs[name] = (model, opt, torch.Generator().manual_seed(1))
        one_step(*runs[name][:2], batch, runs[name][2])  # warm-up (allocations, Adam state)
    times: dict[str, list[float]] = {"full": [], "sampled": []}
    for _ in range(args.repeats):
        for name in ("full", "sampled"):
            times[name].append(one_step(*runs[name][:2], batch, runs[name][2]))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"LSTM language model, V={V}, E={E}, N={N}, B={args.batch}, T={args.bptt}, "
          f"S={args.samples} samples, {torch.get_num_threads()} thread(s), "
          f"{args.repeats} repeats (median)")
    print(tabulate([[k, f"{med[k]:.3f}", " ".join(f"{t:.3f}" for t in times[k])]
                    for k in ("full", "sampled")],
                   headers=["softmax", "step s (median)", "steps s"], tablefmt="github"))
    print(f"ratio full / sampled step time: {med['full'] / med['sampled']:.2f}")


if __name__ == "__main__":
    main()
