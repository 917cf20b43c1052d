"""Progress on stderr: a bar on a terminal, a plain line per epoch on a pipe or in a log file
(NOTE [Progress lines] in spectrumkit/_progress.py)."""

from __future__ import annotations

import io
import re

from tqdm import tqdm

from spectrumkit._progress import ProgressLines, progress_bar
from tests.cases import TINY_TRAIN


class _Clock:
    """A clock that advances 2 s per reading after the first."""

    def __init__(self) -> None:
        self.t = -2.0

    def __call__(self) -> float:
        self.t += 2.0
        return self.t


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_per_epoch_and_one_at_the_end():
    """10 steps of 4 per epoch: lines after steps 4 and 8 and at the end (step 10), each with
    the epoch n / 4, the last loss given, the elapsed time and the rate of the fake clock."""
    out = io.StringIO()
    p = ProgressLines(10, every=4, file=out, per_epoch=4, clock=_Clock())
    for step in range(1, 11):  # as the training loop calls it: count the step, then its loss
        p.update(1)
        p.set_postfix(loss=f"{1 / step:.4g}")
    p.close()
    assert out.getvalue().splitlines() == [
        "train: step 4/10 (epoch 1.00), loss 0.25, 2.0 s, 2 step/s",
        "train: step 8/10 (epoch 2.00), loss 0.125, 4.0 s, 2 step/s",
        "train: step 10/10 (epoch 2.50), loss 0.1, 6.0 s, 1.67 step/s",
    ]


def test_a_resumed_run_counts_from_where_it_was_and_close_does_not_repeat():
    """Resumed at step 4 of 8 (4 per epoch): one line at step 8; close adds nothing."""
    out = io.StringIO()
    p = ProgressLines(8, 4, every=4, file=out, per_epoch=4, clock=_Clock())
    p.update(4)
    p.close()
    assert out.getvalue().splitlines() == ["train: step 8/8 (epoch 2.00), 2.0 s, 2 step/s"]


def test_the_kind_follows_the_stream_and_the_flag():
    """None: lines on a stream that is no terminal, the bar on a terminal; True: the bar; False
    or a finished run: a disabled bar that writes nothing."""
    pipe, term = io.StringIO(), _Terminal()
    assert isinstance(progress_bar(None, 100, per_epoch=10, file=pipe), ProgressLines)
    lines = progress_bar(None, 100, per_epoch=10, file=pipe)
    assert lines.every == 10
    assert progress_bar(None, 5, per_epoch=10, file=pipe).every == 1  # shorter than an epoch
    assert progress_bar(None, 40, file=pipe).every == 4               # a tenth of the run
    bar = progress_bar(None, 100, file=term)
    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()
    for kwargs in ({"progress": False}, {"progress": None, "finished": True}):
        quiet = progress_bar(total=3, file=pipe, **kwargs)
        quiet.update(3)
        quiet.close()
        assert isinstance(quiet, tqdm) and quiet.disable
    assert pipe.getvalue() == ""


def test_train_on_a_pipe_prints_a_line_per_epoch(tmp_path, cli):
    """`spectrumkit train` with stderr captured (no terminal): 256 examples in batches of 64 are
    4 steps per epoch, so 8 steps print lines at steps 4 and 8, epochs 1 and 2."""
    r = cli(*TINY_TRAIN[:-2], "--steps", "8", "--out", tmp_path / "run").ok()
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("train: step")]
    got = [re.match(r"train: step (\d+)/8 \(epoch ([0-9.]+)\), loss [0-9.e+-]+, ", ln).groups()
           for ln in lines]
    assert got == [("4", "1.00"), ("8", "2.00")], r.stderr
