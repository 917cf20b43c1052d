"""Test cases as data: small cells with seeds and ids, shared by the test modules.

``USER_LINEAR_TANH`` is a user-defined cell the tests build themselves: every API must accept it.
``TINY_TRAIN``, ``TINY_PRUNE`` and ``TINY_SPECTRUM`` are the smallest real runs of the three
commands (a few seconds' worth of work at most), for the CLI tests.
"""

import torch

from spectrumkit.cells import TensorLayout, make_cell


def _user_step(p, x, s):
    # An Elman cell with a leaky term, written without broadcasting: one example only.
    return 0.5 * s + torch.tanh(p["A"] @ s + p["B"] @ x + p["bias"])


USER_CELL = make_cell(
    "user_leaky",
    _user_step,
    lambda D, N: {"A": (N, N), "B": (N, D), "bias": (N,)},
    layout={"A": TensorLayout("recurrent", ("h",)), "B": TensorLayout("input", ("h",)),
            "bias": TensorLayout("bias", ("h",))},
)

BUILTIN = ("rnn", "rnn_relu", "lstm", "peephole_lstm", "gru", "gru_cho")

CASES = [
    {"id": f"{c}-D{d}-N{n}", "cell": c, "D": d, "N": n, "T": t, "B": b, "seed": i}
    for i, (c, d, n, t, b) in enumerate([
        ("rnn", 3, 4, 4, 2), ("rnn_relu", 2, 3, 3, 2), ("lstm", 3, 4, 4, 2),
        ("peephole_lstm", 2, 3, 3, 2), ("gru", 3, 4, 4, 2), ("gru_cho", 3, 4, 4, 2),
        (USER_CELL, 2, 3, 3, 2),
    ])
]

TINY_TRAIN = ["train", "--hidden-size", "8", "--data-option", "limit=256", "--data-option",
              "val_limit=128", "--steps", "4"]
TINY_PRUNE = ["prune", "--hidden-size", "8", "--seq-len", "4", "--score-batch", "8"]
TINY_SPECTRUM = ["spectrum", "--cell", "gru", "--hidden-size", "8", "--seq-len", "6",
                 "--spectrum-batch", "4"]
