"""What a study spec must pass before any trial runs: a [report] metric that its trial reports,
an explicit opt-in for a trial given as an import path, and a bounded number of trials."""

from __future__ import annotations

import pytest
import torch

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import load_study, run_study
from tests.study_fake import study_toml


@pytest.mark.parametrize("metric,hint", [("val_eror_pct", "did you mean 'val_error_pct'"),
                                         ("accuracy", "")])
def test_bad_report_metric_is_refused_at_load(tmp_path, metric, hint):
    """A [report] metric that no trial reports is refused at load, before any trial runs."""
    toml = study_toml(tmp_path, trial="prune-train", metric=metric)
    with pytest.raises(SpectrumkitError, match=r"load_study: expected report.table.metric among "
                                               r"the metrics of trial 'prune-train'") as e:
        load_study(toml)
    assert hint in str(e.value) and repr(metric) in str(e.value)


def test_report_metrics_of_the_builtin_trial_are_what_it_reports(tmp_path):
    """The list the [report] check uses equals the metrics a real (tiny) trial returns."""
    from spectrumkit.study.config import TRIAL_METRICS, TrialConfig
    from spectrumkit.study.executors import TrialContext
    from spectrumkit.study.trial import run_trial

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrialConfig(method="snip", hidden_size=4, steps=2, batch_size=8, score_batch=8,
                          data={"limit": 32, "val_limit": 16}, record=("anatomy", "sv_hist"),
                          spectrum_batch=2)
        out = run_trial(cfg, TrialContext(device="cpu"))
        ev = run_trial(cfg.model_copy(update={"steps": 0}), TrialContext(device="cpu"))
    finally:
        torch.set_num_threads(before)
    got = set(out["metrics"]) | set(ev["metrics"])
    assert got <= set(TRIAL_METRICS["prune-train"]), got - set(TRIAL_METRICS["prune-train"])
    for shipped in ("val_error_pct", "test_ppl", "ir_ratio", "score_seconds", "sv_mean_trained"):
        assert shipped in TRIAL_METRICS["prune-train"]


def test_trial_import_path_needs_the_explicit_flag(tmp_path):
    """trial = "module:function" is an import path, and importing is code execution: refused
    unless allow_trial_code=True / --allow-trial-code, before anything is imported."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef run(c, ctx):\n    return {{}}\n")
    toml = study_toml(tmp_path, trial="evil_mod:run")
    with pytest.raises(SpectrumkitError, match=r"run_study: expected trial kinds among "
                                               r"prune-train \(an import path runs code: pass "
                                               r"allow_trial_code=True, --allow-trial-code\), "
                                               r"got 'evil_mod:run'"):
        run_study(toml, out=str(tmp_path / "out"), progress=False)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_huge_seed_count_is_refused_at_once(tmp_path):
    """--seeds 100000000 is refused at once in one line, before any config is built."""
    toml = study_toml(tmp_path, hidden=(8, 16))
    with pytest.raises(SpectrumkitError, match=r"load_study: expected at most 10000 trials "
                                               r"\(seeds x the points of the axes' product\), "
                                               r"got 200000000"):
        load_study(toml, seeds=100_000_000)
