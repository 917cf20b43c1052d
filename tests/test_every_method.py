"""Every method (jacobian, snip, foresight, magnitude, random, synflow, l2, dense) through a study,
the command line and the Python API: every trial is ok, each trial's reproduce line trains the
same mask bit for bit, and the Python API's mask is the study's."""

from __future__ import annotations

import json

import pytest
import torch

from spectrumkit.config import RunConfig
from spectrumkit.pipeline import run_pipeline, unpack_mask
from tests.test_pipeline import _rerun

METHODS = ("jacobian", "snip", "foresight", "magnitude", "random", "synflow", "l2", "dense")

STUDY = """
name = "every-method"
[grid]
method = [{methods}]
[fixed]
hidden_size = 6
sparsity = 0.8
steps = 6
eval_every = 3
batch_size = 16
score_batch = 8
l2_stage_steps = 1
record = ["mask"]
data = {{ limit = 64, val_limit = 32 }}
[presets.quick]
seeds = 1
[report]
table = {{ rows = "method", metric = "val_error_pct" }}
"""


@pytest.mark.slow
def test_every_method_in_a_study_the_cli_and_python(tmp_path, cli):
    toml = tmp_path / "every-method.toml"
    toml.write_text(STUDY.format(methods=", ".join(f'"{m}"' for m in METHODS)))
    r = cli("study", toml, "--out", tmp_path / "out", "--device", "cpu", "--no-figures",
            "--threads", "1")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "out" / "every-method"
    results = [json.loads(p.read_text()) for p in sorted((folder / "trials").glob("*.json"))]
    assert sorted(x["config"]["score"]["method"] for x in results) == sorted(METHODS)
    for result in results:
        method = result["config"]["score"]["method"]
        assert result["status"] == "ok", method
        log = (folder / "logs" / f"{result['key']}.log").read_text()
        if method == "dense":  # no mask: the key and the history are compared by the rerun
            assert result["artifacts"]["mask"] is None
            continue
        _rerun(cli, result, log, tmp_path / method)
        # the Python API: the same configuration, the same mask
        py = run_pipeline(RunConfig.model_validate(result["config"]), device="cpu")
        study_mask = unpack_mask(result["artifacts"]["mask"])
        assert py.mask is not None and list(py.mask) == list(study_mask), method
        for name in study_mask:
            assert torch.equal(py.mask[name], study_mask[name]), (method, name)
