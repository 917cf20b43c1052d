"""The SLURM executor through submitit: the same results as the local executor, resume after a
kill, the [executor] table and the flags, and one-line refusals.

The end-to-end tests use submitit's local cluster (``[executor] cluster = "local"``): the same
pickled jobs, job folder and result path as on SLURM, with the tasks as processes of this
machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import load_study, run_study
from tests.study_fake import expected_error

pytest.importorskip("submitit")

ROOT = Path(__file__).resolve().parents[1]
FAKE = "tests.study_fake:run"

REAL = """
[grid]
method = ["jacobian", "random"]
[fixed]
hidden_size = 8
steps = 3
batch_size = 16
score_batch = 16
record = ["sv_hist"]
data = { limit = 64, val_limit = 32 }
[presets.quick]
seeds = 1
[report]
table = { rows = "method", metric = "val_error_pct" }
"""


def fake_toml(tmp_path: Path, *, hidden=(8, 16), data="{}", executor='cluster = "local"') -> Path:
    p = tmp_path / "fake.toml"
    p.write_text(f"""name = "fake"
[grid]
hidden_size = {list(hidden)}
[fixed]
trial = "{FAKE}"
epochs = 1
data = {data}
[presets.quick]
seeds = 1
[report]
table = {{ rows = "hidden_size", metric = "val_error_pct" }}
[executor]
{executor}
""")
    return p


def _without_timing(result: dict) -> dict:
    """A stored result without what differs from run to run (wall times, the worker's env)."""
    r = {k: v for k, v in result.items() if k != "env"}
    r["metrics"] = {k: v for k, v in r["metrics"].items() if not k.endswith("seconds")}
    r["history"] = {k: v for k, v in r["history"].items() if k != "seconds"}
    return r


@pytest.mark.slow
def test_slurm_jobs_give_the_local_executors_results_bit_for_bit(tmp_path):
    toml = tmp_path / "real.toml"
    toml.write_text(REAL + '[executor]\ncluster = "local"\n')
    a = run_study(toml, out=str(tmp_path / "a"), device="cpu", threads=1, progress=False)
    b = run_study(toml, out=str(tmp_path / "b"), device="cpu", executor="slurm", progress=False)
    assert a.study.keys == b.study.keys and (b.total, b.ran) == (2, 2)
    assert b.statuses == {"ok": 2, "diverged": 0, "failed": 0}
    for key in a.study.keys:
        ra = json.loads((tmp_path / "a/real/trials" / f"{key}.json").read_text())
        rb = json.loads((tmp_path / "b/real/trials" / f"{key}.json").read_text())
        assert _without_timing(ra) == _without_timing(rb)  # floats compared exactly
        assert rb["env"]["threads"] == 1  # one CPU per trial: one torch thread
        assert ra["metrics"]["val_error_pct"] is not None
        assert rb["artifacts"]["sv_hist"]["trained"]["counts"]
        log = (tmp_path / "b/real/logs" / f"{key}.log").read_text()
        pid = int(re.search(r"=== start key=\w+ pid=(\d+)", log).group(1))
        assert pid != os.getpid()  # the trial ran in a submitit task
    # the job folder holds each task's pickled job and outcome (NOTE [SLURM folders])
    assert len(list((tmp_path / "b/real/slurm").glob("*_0_result.pkl"))) == 2


@pytest.mark.slow
def test_a_killed_slurm_study_resumes_with_its_finished_trials(tmp_path, cli):
    toml = fake_toml(tmp_path, hidden=(8,))
    # one quick trial and two that are still running when the study is stopped: a preset axis
    # of labelled variants (NOTE [Study axes])
    toml.write_text(toml.read_text().replace("[grid]\nhidden_size = [8]\n", "").replace(
        "[presets.quick]\nseeds = 1\n", "[presets.quick]\nseeds = 1\n" + "".join(
            f'[[presets.quick.grid.kind]]\nlabel = "{label}"\nhidden_size = {h}\n'
            f"data = {data}\n" for label, h, data in
            (("quick", 8, "{}"), ("slow16", 16, "{ sleep = 5.0 }"),
             ("slow24", 24, "{ sleep = 5.0 }")))))
    out = tmp_path / "out"
    trials, logs = out / "fake" / "trials", out / "fake" / "logs"
    cmd = ["study", str(toml), "--out", str(out), "--allow-trial-code", "--executor", "slurm",
           "--no-figures"]
    env = {"PYTHONPATH": str(ROOT)}
    with cli.popen(*cmd, env=env) as proc:
        deadline = time.monotonic() + 120
        while not (list(trials.glob("*.json")) and len(_starts(logs)) == 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no result and running trials appeared"
            time.sleep(0.05)
        running = [pid for key, pid in _starts(logs).items()
                   if "=== end" not in (logs / f"{key}.log").read_text()]
        os.kill(proc.pid, signal.SIGTERM)  # the submitting command alone
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "error: aborted" and "Traceback" not in err, err
    assert len(running) == 2  # stopped in the middle of two trials
    deadline = time.monotonic() + 30  # their tasks were cancelled, not left running
    while any(_alive(pid) for pid in running):
        assert time.monotonic() < deadline, "a cancelled task still runs"
        time.sleep(0.1)
    before = {p.name: p.read_bytes() for p in trials.glob("*.json")}
    assert len(before) == 1
    r = cli.subprocess(*cmd, env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "3 trials, 1 already done, 2 run now; ok 3" in r.stdout
    after = {p.name: p.read_bytes() for p in trials.glob("*.json")}
    assert {k: after[k] for k in before} == before  # the finished trial is reused, byte-identical
    got = {(r["config"]["hidden_size"]): r["metrics"]["val_error_pct"]
           for r in (json.loads(b) for b in after.values())}
    assert got == {h: expected_error(h, 0, "jacobian") for h in (8, 16, 24)}
    starts = {k: (logs / f"{k}.log").read_text().count("=== start") for k in _starts(logs)}
    assert sorted(starts.values()) == [1, 2, 2]  # the finished one never ran again


def _starts(logs: Path) -> dict[str, int]:
    """key -> the pid of its first start marker (NOTE [Run markers])."""
    out = {}
    for p in logs.glob("*.log") if logs.is_dir() else ():
        m = re.search(r"=== start key=\w+ pid=(\d+)", p.read_text())
        if m:
            out[p.stem] = int(m.group(1))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has ended
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_executor_table_and_flags_reach_the_sbatch_script(tmp_path, monkeypatch):
    """Flags win over the study's [executor] table, key by key; the values land in sbatch."""
    import submitit

    from spectrumkit.study.runner import RunOptions, _executor_options
    from spectrumkit.study.slurm import submitit_parameters

    # submitit refuses to build a SLURM executor without srun: a stand-in on the PATH
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "srun").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    toml = fake_toml(tmp_path, executor='partition = "cpu"\ntime = "1-00:30"\ncpus_per_trial = 4\n'
                     'gpus_per_trial = 1\nmem_gb = 16\naccount = "lab"\narray_parallelism = 3')
    spec = load_study(toml)
    opts = RunOptions(executor="slurm", partition="gpu", time=90, gpus_per_trial=2)
    resources = _executor_options("run_study", spec, opts)
    assert submitit_parameters(resources) == {
        "name": "spectrumkit", "tasks_per_node": 1, "nodes": 1, "timeout_min": 90,
        "cpus_per_task": 4, "gpus_per_node": 2, "mem_gb": 16.0, "slurm_partition": "gpu",
        "slurm_account": "lab", "slurm_array_parallelism": 3}
    ex = submitit.AutoExecutor(folder=str(tmp_path / "slurm"), cluster="slurm")
    ex.update_parameters(**submitit_parameters(resources))
    script = ex._executor._make_submission_file_text("CMD", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --gpus-per-node=2", "#SBATCH --mem=16GB", "#SBATCH --account=lab",
                 "#SBATCH --ntasks-per-node=1", "#SBATCH --nodes=1"):
        assert line in script.splitlines(), (line, script)
    assert "#SBATCH --job-name=spectrumkit" in script.splitlines()


@pytest.mark.parametrize("given, minutes", [(90, 90), ("90", 90), ("2:00:00", 120),
                                            ("1-00:30", 1470), ("0:01:01", 2), ("3-0", 4320),
                                            ("5:30", 6)])
def test_time_limits_in_minutes_as_sbatch_reads_them(given, minutes):
    from spectrumkit.study._executor_options import time_minutes

    assert time_minutes(given) == minutes


def test_an_unknown_executor_option_is_one_line(tmp_path, cli):
    toml = fake_toml(tmp_path, executor='partiton = "gpu"')
    line = cli("study", toml, "--out", tmp_path / "out", "--allow-trial-code").error_line()
    assert "'partiton'" in line and "[executor]" in line and "partition" in line
    toml = fake_toml(tmp_path)
    line = cli("study", toml, "--out", tmp_path / "out", "--allow-trial-code",
               "--set", "executor.gpus=1").error_line()
    assert "'gpus'" in line and "gpus_per_trial" in line
    line = cli("study", toml, "--out", tmp_path / "out", "--allow-trial-code", "--executor",
               "slurm", "--time", "soon").error_line()
    assert "time" in line and "'soon'" in line
    assert not (tmp_path / "out").exists()


def test_executor_slurm_without_submitit_is_one_line(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if submitit were not installed
    toml = fake_toml(tmp_path)
    line = cli("study", toml, "--out", tmp_path / "out", "--allow-trial-code", "--executor",
               "slurm").error_line()
    assert "pip install 'spectrumkit[slurm]'" in line and "--executor slurm" in line
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_slurm_settings_that_cannot_apply_are_refused(tmp_path, cli, monkeypatch):
    toml = fake_toml(tmp_path, executor="")
    line = cli("study", toml, "--out", tmp_path / "out", "--allow-trial-code",
               "--partition", "gpu").error_line()
    assert "--partition gpu with --executor local" in line
    line = cli("study", toml, "--out", tmp_path / "out", "--allow-trial-code", "--executor",
               "slurm", "--set", 'executor.cluster="local"', "--gpus-per-trial", "0.5"
               ).error_line()
    assert "whole number" in line and "--gpus-per-trial" in line and "0.5" in line
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun: not a SLURM cluster
    line = cli("study", toml, "--out", tmp_path / "out", "--allow-trial-code", "--executor",
               "slurm").error_line()
    assert "srun" in line and 'cluster = "local"' in line
    assert not (tmp_path / "out").exists()
    with pytest.raises(SpectrumkitError, match="run_study: expected --partition and --time"):
        run_study(toml, out=str(tmp_path / "out"), time="1:00:00", allow_trial_code=True)
