"""A stand-in trial for the study *infrastructure* tests only (keys, storage, resume, kill,
executors, corrupt files). It trains nothing: its metrics are closed-form functions of the config,
so the tests can check the summaries against hand-computed values. ``data`` options: ``sleep``
(seconds to wait, so a test can kill a run mid-trial) and ``fail`` (raise).

    val_error_pct = hidden_size / 8 + 2·seed + (1 if method == "random" else 0)
    val_loss      = val_error_pct / 100

``study_toml`` writes a tiny study of this trial (two presets, a [report] table) for those tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

FAKE = "tests.study_fake:run"


def expected_error(hidden_size: int, seed: int, method: str) -> float:
    return hidden_size / 8 + 2 * seed + (1.0 if method == "random" else 0.0)


def run(config, ctx):
    ctx.log(f"fake trial: hidden={config.hidden_size} seed={config.seed} method={config.method}")
    time.sleep(float(config.data.get("sleep", 0.0)))
    if config.data.get("fail"):
        raise RuntimeError("requested failure\nsecond line")
    err = expected_error(config.hidden_size, config.seed, config.method)
    diverged = config.lr >= 10
    return {"status": "diverged" if diverged else "ok", "device": ctx.torch_device(),
            "metrics": {"val_error_pct": None if diverged else err,
                        "val_loss": float("nan") if diverged else err / 100,
                        "diverged_at_step": 3 if diverged else None},
            "history": {"step": [1, 2], "train_loss": [1.0, 0.5]}}


def study_toml(tmp_path: Path, *, name: str | None = "fake", hidden=(8,), methods=("random",),
               seeds: int = 1, paper_seeds: int = 3, data: str = "{}", trial: str = FAKE,
               metric: str = "val_error_pct", fixed_extra: str = "", top_extra: str = "",
               file: str = "fake.toml") -> Path:
    """A tiny study with two presets (quick: ``seeds`` seeds, paper: ``paper_seeds``)."""
    head = "" if name is None else f"name = {json.dumps(name)}\n"
    text = f"""{head}{top_extra}
[grid]
hidden_size = {list(hidden)}
method = {json.dumps(list(methods))}
[fixed]
trial = "{trial}"
epochs = 1
data = {data}
{fixed_extra}
[presets.quick]
seeds = {seeds}
[presets.paper]
seeds = {paper_seeds}
[report]
table = {{ rows = "hidden_size", cols = "method", metric = "{metric}" }}
"""
    p = tmp_path / file
    p.write_text(text)
    return p
