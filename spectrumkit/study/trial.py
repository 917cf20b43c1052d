r"""The built-in trial ``prune-train``: the prune-and-train pipeline of :mod:`spectrumkit.pipeline`.

A trial runs :func:`~spectrumkit.pipeline.run_pipeline` on its config with the study's run options
(device, data root, log) and returns its outcome. Its log starts with the ``spectrumkit train``
command that runs the same pipeline on the same config (NOTE [Reproduce a trial]).

NOTE [Reproduce a trial]
The line ``reproduce: spectrumkit train ... --out OUT`` in a trial's log
(:func:`spectrumkit.config.flags.train_command`, NOTE [Flags from fields]) lists every
config value that differs from the configuration's defaults, and ``--data-root`` when the
study had one. Run with ``OUT`` replaced, it trains the same mask bit for bit and writes the
same history apart from wall time (NOTE [Trial randomness] in :mod:`spectrumkit.pipeline`),
and prints the trial's key.
"""

from __future__ import annotations

from typing import Any

from ..config.flags import train_command
from ..errors import SpectrumkitError
from ..pipeline import run_pipeline, sub_seed
from .config import TrialConfig
from .executors import TrialContext

__all__ = ["run_trial", "sub_seed"]


def _reproduce_line(c: TrialConfig, data_root: str | None) -> str:
    """The log line with the command that re-runs this trial (NOTE [Reproduce a trial])."""
    try:
        return f"reproduce: {train_command(c, data_root=data_root)}"
    except SpectrumkitError as e:  # the trial still runs; the log says why there is no command
        return f"reproduce: no command ({' '.join(str(e).split())})"


def run_trial(c: TrialConfig, ctx: TrialContext) -> dict[str, Any]:
    r"""Run one ``prune-train`` trial (:func:`~spectrumkit.pipeline.run_pipeline`).

    Returns ``{"status", "device", "metrics", "history", "artifacts", "data"}`` as
    the results schema describes (``data``: the loader's description of the data used); a diverged
    run has status ``diverged`` and its ``diverged_at_step``.
    """
    ctx.log(_reproduce_line(c, ctx.data_root))
    result = run_pipeline(c, device=ctx.device, data_root=ctx.data_root, log=ctx.log,
                          callback=ctx.callback)
    return result.outcome()
