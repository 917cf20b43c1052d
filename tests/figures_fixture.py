"""A tiny results folder made by the real study runner (docs/results-schema.md), for the figures tests.

Two methods × two seeds of the real prune-train trial on the bundled sequential-MNIST subset: a
6-unit GRU, 95 % sparse, 4 Adam steps with an evaluation every 2, and every record (anatomy,
connection map, singular-value histograms, σ̄ per step, Lyapunov exponents). About 10 s on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

from spectrumkit.study import run_study

METHODS = ("jacobian", "random")
SEEDS = (0, 1)
D, N, T = 28, 6, 28            # seq-MNIST rows: 28 steps of 28 pixels; 6 hidden units
SPECTRUM_BATCH = 4
SPARSITY = 0.95
PRUNABLE = 3 * N * D + 3 * N * N  # GRU weight_ih (3N, D) + weight_hh (3N, N)
FIGURE_NAMES = ["anatomy", "sv_hist", "connection_maps", "curves", "lyapunov", "spectrum_steps"]

TOML = f"""
name = "fixture"
description = "figures test fixture: tiny real trials"
[grid]
method = {list(METHODS)!r}
[fixed]
hidden_size = {N}
recipe = "legacy"   # a 6-unit net under the chi-gamma default may keep no recurrent weight (I/R inf)
sparsity = {SPARSITY}
steps = 4
eval_every = 2
batch_size = 16
score_batch = 16
data = {{ limit = 64, val_limit = 32 }}
record = ["anatomy", "connection_map", "sv_hist", "spectrum_steps", "lyapunov"]
spectrum_batch = {SPECTRUM_BATCH}
hist_bins = 10
lyapunov_k = 4
[presets.quick]
seeds = {len(SEEDS)}
[report]
table = {{ rows = "method", metric = "val_error_pct", paper_table = "Table 1" }}
figures = {FIGURE_NAMES!r}
""".replace("'", '"')


def build(root: Path) -> Path:
    """Run the fixture study into ``root/out`` and return its results folder ``root/out/fixture``."""
    toml = root / "fixture.toml"
    toml.write_text(TOML)
    run = run_study(toml, out=str(root / "out"), device="cpu", progress=False)
    assert run.statuses == {"ok": len(METHODS) * len(SEEDS), "diverged": 0, "failed": 0}, run.failed
    return run.dir
