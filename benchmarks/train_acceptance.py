"""Acceptance runs of training (long; not unit tests). Prints one result line per run.

    PYTHONPATH=. python benchmarks/train_acceptance.py dense      # GRU-128, row seq-MNIST, 15 ep
    PYTHONPATH=. python benchmarks/train_acceptance.py sparse     # same, 95 % sparse random mask
    PYTHONPATH=. python benchmarks/train_acceptance.py lm         # LSTM-128, bundled WikiText, 1 ep
    PYTHONPATH=. python benchmarks/train_acceptance.py adding     # GRU-128, adding problem T=50
    PYTHONPATH=. python benchmarks/train_acceptance.py all

Targets: dense ≤ 5 % val error; sparse ≤ 12 % val error with pruned entries exactly 0 at
the end; LM test perplexity below the unigram perplexity of the test split; adding MSE < 0.05.
``--device auto`` (the default) uses CUDA when present; ``--threads`` sets torch's CPU threads for
this process only (the machine these were first run on was shared, so 1 was steadier than 2).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from spectrumkit.config import TrainingConfig
from spectrumkit.data import load_task
from spectrumkit.training import make_model, train


def random_mask(model, density: float, seed: int) -> dict[str, torch.Tensor]:
    """Exactly K = round(density · n) kept entries, uniformly at random over the cell's weights."""
    params = model.prunable()
    n = sum(p.numel() for p in params.values())
    scores = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    keep = torch.zeros(n, dtype=torch.bool)
    keep[torch.argsort(scores, descending=True, stable=True)[: round(density * n)]] = True
    out, i = {}, 0
    for k, p in params.items():
        out[k] = keep[i:i + p.numel()].view_as(p)
        i += p.numel()
    return out


def seq_mnist_run(sparse: bool, args) -> None:
    task = load_task("seq-mnist", scale="unit")
    model = make_model(task, "gru", 128, init="torch", seed=args.seed)
    mask = random_mask(model, 0.05, args.seed) if sparse else None
    t = time.perf_counter()
    r = train(model, task, training=TrainingConfig(epochs=15, batch_size=64, lr=1e-3, optimizer="adam"), mask=mask,
              seed=args.seed, device=args.device)
    wall = time.perf_counter() - t
    print(r.history.to_string(index=False))
    line = (f"{'sparse 95% random' if sparse else 'dense'} GRU-128 row seq-MNIST ({task.description})"
            f": val_error_pct={r.metrics['val_error_pct']:.2f} status={r.status} "
            f"device={r.device} train_seconds={r.metrics['train_seconds']:.1f} wall={wall:.1f}s")
    if sparse:
        cell = model.prunable()
        nonzero = sum(int((cell[k].detach().cpu()[~m] != 0).sum()) for k, m in mask.items())
        kept = sum(int(m.sum()) for m in mask.values()) / sum(m.numel() for m in mask.values())
        line += f" density={kept:.4f} pruned_nonzero_at_end={nonzero}"
    target = 12.0 if sparse else 5.0
    print(line, "PASS" if r.metrics["val_error_pct"] <= target else "FAIL", f"(target <= {target})")


def lm_run(args) -> None:
    task = load_task("wikitext")
    V = task.vocab_size
    ids = task.test.ids
    uni_test = torch.bincount(ids, minlength=V).double()
    uni_train = torch.bincount(task.train.ids, minlength=V).double()
    ppl_test_fit = math.exp(-(uni_test / uni_test.sum())[ids].log().mean().item())
    ppl_train_fit = math.exp(-(uni_train / uni_train.sum())[ids].log().mean().item())
    model = make_model(task, "lstm", 128, seed=args.seed)
    t = time.perf_counter()
    r = train(model, task, training=TrainingConfig(epochs=1, batch_size=20, lr=3e-3, optimizer="adam", eval_every=50), seed=args.seed,
              device=args.device)
    wall = time.perf_counter() - t
    print(r.history.to_string(index=False))
    ok = r.metrics["test_ppl"] < min(ppl_test_fit, ppl_train_fit)
    print(f"LSTM-128 one epoch ({task.description}): test_ppl={r.metrics['test_ppl']:.1f} "
          f"unigram_ppl(test-fitted)={ppl_test_fit:.1f} unigram_ppl(train-fitted)="
          f"{ppl_train_fit:.1f} val_ppl={r.metrics['val_ppl']:.1f} device={r.device} "
          f"wall={wall:.1f}s", "PASS" if ok else "FAIL")


def adding_run(args) -> None:
    task = load_task("adding", T=50, seed=args.seed)
    model = make_model(task, "gru", 128, init="torch", seed=args.seed)
    t = time.perf_counter()
    r = train(model, task, training=TrainingConfig(epochs=10, batch_size=64, lr=1e-3), seed=args.seed, device=args.device)
    wall = time.perf_counter() - t
    print(r.history.to_string(index=False))
    print(f"GRU-128 adding T=50: val_mse={r.metrics['val_mse']:.4f} test_mse="
          f"{r.metrics['test_mse']:.4f} (baseline 0.167) device={r.device} wall={wall:.1f}s",
          "PASS" if r.metrics["test_mse"] < 0.05 else "FAIL")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", choices=["dense", "sparse", "lm", "adding", "all"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = ["dense", "sparse", "lm", "adding"] if args.which == "all" else [args.which]
    for w in runs:
        if w in ("dense", "sparse"):
            seq_mnist_run(w == "sparse", args)
        elif w == "lm":
            lm_run(args)
        else:
            adding_run(args)


if __name__ == "__main__":
    main()
