r"""The synthetic long-memory tasks: the adding problem and the copying-memory task.

Legend: n = examples, T = steps (the copy task's inputs have L = 2T + delay steps).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import check_memory, check_positive_int, fail
from ..init import make_generator
from .containers import SequenceDataset, TaskData

__all__ = ["COPY_BLANK", "COPY_CUE", "COPY_SYMBOLS", "adding_problem", "copy_task",
           "synthetic_task"]


def adding_problem(T: int, n: int, *, generator: torch.Generator | None = None,
                   seed: int | None = None) -> SequenceDataset:
    r"""The adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015).

    Each input step is (v_t, m_t) with v_t ~ U(0, 1); exactly two markers m_t = 1, one at a
    uniform position in [0, ⌊T/2⌋) and one in [⌊T/2⌋, T). The target is the sum of the two marked
    values. Predicting the constant 1 gives MSE Var(v_1 + v_2) = 1/6 ≈ 0.167, the baseline a model
    must beat. Draws, in order from ``generator`` (or a fresh one seeded with ``seed``): the values
    (n, T), the first positions, the second positions.

    Returns:
        :class:`SequenceDataset` with xs float32 (n, T, 2) and ys float32 (n,).
    """
    fn = "adding_problem"
    check_positive_int(fn, "T", T)
    check_positive_int(fn, "n", n)
    if T < 2:
        raise fail(fn, "T >= 2 (two marked steps)", T)
    g = make_generator(generator, seed, fn)
    v = torch.rand(n, T, generator=g)
    i1 = torch.randint(0, T // 2, (n,), generator=g)
    i2 = torch.randint(T // 2, T, (n,), generator=g)
    m = torch.zeros(n, T)
    rows = torch.arange(n)
    m[rows, i1] = 1.0
    m[rows, i2] = 1.0
    ys = v[rows, i1] + v[rows, i2]
    return SequenceDataset(torch.stack([v, m], dim=-1), ys,
                           f"adding problem, T={T}, {n} examples (baseline MSE 1/6)")


COPY_SYMBOLS, COPY_BLANK, COPY_CUE = 8, 0, 9


def copy_task(T: int, n: int, delay: int, *, generator: torch.Generator | None = None,
              seed: int | None = None) -> SequenceDataset:
    r"""The copying-memory task (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al. 2016).

    Tokens: 0 = blank, 1..8 = symbols, 9 = cue; V = 10. An input of length L = 2T + delay holds T
    symbols drawn uniformly from 1..8, then ``delay − 1`` blanks, the cue, and T blanks. The
    target is blank for the first T + delay steps and then the T symbols, in order. A model
    without memory reaches at best a mean cross-entropy of T·ln 8 / L per step.

    Returns:
        :class:`SequenceDataset` with xs long (n, L) and ys long (n, L).
    """
    fn = "copy_task"
    check_positive_int(fn, "T", T)
    check_positive_int(fn, "n", n)
    check_positive_int(fn, "delay", delay)
    g = make_generator(generator, seed, fn)
    sym = torch.randint(1, COPY_SYMBOLS + 1, (n, T), generator=g)
    L = 2 * T + delay
    xs = torch.full((n, L), COPY_BLANK, dtype=torch.long)
    xs[:, :T] = sym
    xs[:, T + delay - 1] = COPY_CUE
    ys = torch.full((n, L), COPY_BLANK, dtype=torch.long)
    ys[:, T + delay:] = sym
    return SequenceDataset(xs, ys, f"copy task, T={T}, delay={delay}, {n} examples "
                           f"(memoryless cross-entropy {T * math.log(COPY_SYMBOLS) / L:.4f})")



# NOTE [Synthetic task memory]
# The synthetic tasks hold all three splits at once, so their sizes go through
# spectrumkit.errors.check_memory before anything is drawn. Bytes per example (lower bounds, the
# kept tensors and the one transient stack): adding 16·T (values and markers in float32, then their
# stacked copy); copy 8·T + 16·L with L = 2T + delay (the symbols, inputs and targets in int64).
def _synthetic_bytes(name: str, o: dict[str, Any]) -> int:
    n = o["n_train"] + o["n_val"] + o["n_test"]
    if name == "adding":
        return 16 * o["T"] * n
    return (8 * o["T"] + 16 * (2 * o["T"] + o["delay"])) * n


def _synthetic_what(name: str, o: dict[str, Any]) -> str:
    delay = f", delay={o['delay']}" if name == "copy" else ""
    return (f"the {name} task's data (T={o['T']}{delay}, n_train + n_val + n_test = "
            f"{o['n_train'] + o['n_val'] + o['n_test']} examples)")


def synthetic_task(name: str, root: Any, o: dict[str, Any]) -> TaskData:
    """``adding`` or ``copy``: train, then val, then test drawn from one seeded generator."""
    fn = "load_task"
    for k in ("T", "n_train", "n_val", "n_test") + (("delay",) if name == "copy" else ()):
        check_positive_int(fn, k, o[k])
    check_memory(fn, _synthetic_what(name, o), _synthetic_bytes(name, o))
    g = make_generator(None, o["seed"], fn)
    if name == "adding":
        train, val, test = (adding_problem(o["T"], o[k], generator=g)
                            for k in ("n_train", "n_val", "n_test"))
        return TaskData(name, "regression", train, val, test,
                        f"adding problem, T={o['T']}, seed={o['seed']}; train {o['n_train']}, "
                        f"val {o['n_val']}, test {o['n_test']} (baseline MSE 1/6)",
                        input_size=2)
    train, val, test = (copy_task(o["T"], o[k], o["delay"], generator=g)
                        for k in ("n_train", "n_val", "n_test"))
    return TaskData(name, "language", train, val, test,
                    f"copy task, T={o['T']}, delay={o['delay']}, seed={o['seed']}; train "
                    f"{o['n_train']}, val {o['n_val']}, test {o['n_test']}",
                    vocab_size=COPY_SYMBOLS + 2)
