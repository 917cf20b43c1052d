"""Checkpoints at the command line: a run resumes only its own checkpoint (the same run
identity), and ``--no-resume`` starts afresh, leaving nothing of the earlier run behind."""

from __future__ import annotations

from tests.cases import TINY_TRAIN


def test_resume_only_the_same_run_and_no_resume_starts_afresh(tmp_path, cli):
    """At the command line: a resume with another --init is refused in one line naming it;
    --no-resume removes the earlier run's checkpoint and mask; a dense run leaves no mask."""
    out = tmp_path / "run"
    r = cli(*TINY_TRAIN, "--method", "random", "--sparsity", "0.5", "--out", out)
    assert r.returncode == 0, r.stderr
    assert (out / "mask.pt").is_file() and (out / "checkpoint" / "checkpoint.pt").is_file()
    before = (out / "metrics.json").read_bytes()
    line = cli(*TINY_TRAIN, "--method", "random", "--sparsity", "0.5", "--init", "normal:1",
               "--out", out).error_line(alone=True)
    assert "init ('glorot' in the checkpoint, 'normal:1' now)" in line and "--no-resume" in line
    assert (out / "metrics.json").read_bytes() == before
    # dense, afresh, same folder
    r = cli(*TINY_TRAIN, "--method", "dense", "--init", "normal:1", "--no-resume", "--out", out)
    assert r.returncode == 0, r.stderr
    # the run's outputs and the folder lock (NOTE [Output locks]), nothing of the earlier run
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [".lock", "history.csv",
                                                                    "metrics.json"]
    assert not (out / "checkpoint" / "checkpoint.pt").exists()
    assert '"init": "normal:1"' in (out / "metrics.json").read_text()
    # a resumed dense run after a pruned --no-resume run leaves no stale mask either
    r = cli(*TINY_TRAIN, "--method", "random", "--sparsity", "0.5", "--no-resume", "--out", out)
    assert r.returncode == 0 and (out / "mask.pt").is_file(), r.stderr
    r = cli(*TINY_TRAIN, "--method", "dense", "--out", out)
    assert r.returncode == 0, r.stderr
    assert not (out / "mask.pt").exists() and (out / "checkpoint" / "checkpoint.pt").is_file()
