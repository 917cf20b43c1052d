"""The run's dtype: a field of the model part, on `spectrumkit train` and in studies.

float32 (the default) is left out of the dump, so every config written before the field keeps
its key; float64 is a different run, computed in float64 end to end.
"""

from __future__ import annotations

import torch

from spectrumkit.config import RunConfig, trial_key
from spectrumkit.pipeline import run_pipeline
from spectrumkit.study.spec import load_study

TINY = dict(hidden_size=6, steps=2, batch_size=8, score_batch=8, method="snip", sparsity=0.5,
            data={"limit": 64, "val_limit": 32}, record=("sv_hist",))


def test_float32_is_the_key_of_a_config_without_the_field_and_float64_is_another_run():
    default, given, wide = RunConfig(**TINY), RunConfig(**TINY, dtype="float32"), \
        RunConfig(**TINY, dtype="float64")
    assert "dtype" not in default.model_dump() and given.model_dump() == default.model_dump()
    assert trial_key(given) == trial_key(default)
    assert wide.model_dump()["dtype"] == "float64" and trial_key(wide) != trial_key(default)
    # the dump reads back as the same config
    assert RunConfig(**wide.model_dump()) == wide


def test_a_float64_run_computes_in_float64_and_agrees_with_float32():
    r32 = run_pipeline(RunConfig(**TINY), device="cpu")
    r64 = run_pipeline(RunConfig(**TINY, dtype="float64"), device="cpu")
    assert {p.dtype for p in r32.model.parameters()} == {torch.float32}
    assert {p.dtype for p in r64.model.parameters()} == {torch.float64}
    assert r32.status == r64.status == "ok"
    # the same seeds, data and steps: the two precisions agree to float32's accuracy
    for k in ("val_loss", "train_loss"):
        assert abs(r64.metrics[k] - r32.metrics[k]) < 1e-3 * max(1.0, abs(r32.metrics[k])), k
    h32 = r32.artifacts["sv_hist"]["init"]
    h64 = r64.artifacts["sv_hist"]["init"]
    assert abs(h64["mean"] - h32["mean"]) < 1e-4 * h32["mean"]


def test_train_takes_dtype_and_prints_the_default_key_for_float32(tmp_path, cli):
    args = ["train", "--hidden-size", "6", "--steps", "1", "--score-batch", "8", "--batch-size",
            "8", "--data-option", "limit=64", "--data-option", "val_limit=32", "--no-progress"]
    plain = cli(*args, "--out", tmp_path / "a").ok().stdout.splitlines()[0]
    f32 = cli(*args, "--dtype", "float32", "--out", tmp_path / "b").ok().stdout.splitlines()[0]
    f64 = cli(*args, "--dtype", "float64", "--out", tmp_path / "c").ok().stdout.splitlines()[0]
    assert plain == f32 != f64 and plain.startswith("key: ")
    line = cli(*args, "--dtype", "float16", "--out", tmp_path / "d").error_line()
    assert "--dtype" in line and not (tmp_path / "d").exists()


def test_a_study_sets_dtype_for_its_trials():
    s = load_study("init-ablation", "quick", overrides=["dtype=float64"])
    assert {c.dtype for c in s.configs} == {"float64"}
    base = load_study("init-ablation", "quick")
    assert set(s.keys).isdisjoint(base.keys) and len(s.keys) == len(base.keys)


def test_study_run_dtype_is_the_trials_field(tmp_path, cli):
    """`spectrumkit study NAME --dtype float64` runs the trials of `--set dtype=float64`."""
    toml = tmp_path / "tiny.toml"
    toml.write_text("""name = "tiny"
[grid]
method = ["random"]
[fixed]
hidden_size = 4
steps = 1
batch_size = 8
score_batch = 8
sparsity = 0.5
data = { limit = 32, val_limit = 16 }
[presets.quick]
seeds = 1
[report]
table = { rows = "method", metric = "val_error_pct" }
""")
    cli("study", str(toml), "--dtype", "float64", "--out", tmp_path / "out", "--no-figures").ok()
    want = load_study(toml, "quick", overrides=["dtype=float64"]).keys
    assert sorted(p.stem for p in (tmp_path / "out" / "tiny" / "trials").glob("*.json")) == \
        sorted(want)
