"""Process-pool workers on the GPUs of one machine: worker i on cuda:(i mod n), round-robin."""

from __future__ import annotations

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import executors
from spectrumkit.study.executors import Job, worker_device


def test_workers_go_round_robin_over_the_visible_gpus():
    assert [worker_device(i, "auto", 4) for i in range(6)] == \
        ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert [worker_device(i, "cuda", 2) for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert [worker_device(i, "cuda", 1) for i in range(3)] == ["cuda:0"] * 3


def test_a_named_device_or_no_gpu_keeps_the_device_asked_for():
    assert [worker_device(i, "cuda:1", 4) for i in range(3)] == ["cuda:1"] * 3
    assert worker_device(3, "cpu", 4) == "cpu"
    assert worker_device(3, "auto", 0) == "auto"  # resolved to the CPU by the trial
    assert worker_device(3, "cuda", 0) == "cuda"  # refused by the trial in one line
    with pytest.raises(SpectrumkitError, match=r"worker_device: expected index >= 0"):
        worker_device(-1, "auto", 2)


def test_a_pool_worker_runs_its_jobs_on_its_device(monkeypatch):
    """The worker entry point hands ``execute`` the job on the worker's device."""
    seen = []
    monkeypatch.setattr(executors, "execute", lambda job: seen.append(job.device) or {})
    monkeypatch.setattr(executors, "_WORKER_SLOT", (3, 2))  # the 4th worker, 2 GPUs
    for device in ("auto", "cuda", "cpu", "cuda:0"):
        executors._execute_in_worker(Job(key="k", config={}, target="m:f", log_path=None,
                                         device=device))
    assert seen == ["cuda:1", "cuda:1", "cpu", "cuda:0"]
