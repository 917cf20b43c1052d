"""Your own task (NOTE [Your own task]): registered from Python or named by an import path, it is
loaded, trained, run by `spectrumkit train` and by a study, and its data identity follows what its
loader returns."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tests.user_tasks_fixture as fx
from spectrumkit.config import TrainingConfig
from spectrumkit.data import (
    SequenceDataset,
    TaskData,
    check_task_options,
    data_identity,
    load_task,
    register_task,
    task_names,
    unregister_task,
)
from spectrumkit.errors import SpectrumkitError
from spectrumkit.evaluation import make_model
from spectrumkit.study import run_study, trial_key
from spectrumkit.study.config import TrialConfig
from spectrumkit.training import train

ROOT = Path(__file__).resolve().parent.parent
PARITY = "tests.user_tasks_fixture:parity"
WRONG = "tests.user_tasks_fixture:wrong_type"


@pytest.fixture
def parity_task():
    """``parity`` registered for one test, with declared options."""
    register_task("parity", fx.parity, options={"T": 6, "n": 60, "seed": 0},
                  kind="classification")
    yield "parity"
    unregister_task("parity")


def _pool_split(xs, ys):
    """The documented split of one pool: example i goes to val when i % 5 == 4."""
    idx = torch.arange(len(ys))
    return (xs[idx % 5 != 4], ys[idx % 5 != 4]), (xs[idx % 5 == 4], ys[idx % 5 == 4])


# --------------------------------------------------------------------------------------------------
# The registry and its options
# --------------------------------------------------------------------------------------------------


def test_check_task_options_returns_the_given_options_and_refuses_unknown_ones():
    assert check_task_options("seq-mnist", {"limit": 10, "scale": "paper"}) == \
        {"limit": 10, "scale": "paper"}
    assert check_task_options("copy", {}) == {}
    with pytest.raises(SpectrumkitError) as e:
        check_task_options("wikitext", {"scale": "paper"})
    assert str(e.value) == ("check_task_options: expected an option of task 'wikitext' "
                            "(max_vocab, bptt, limit), got 'scale'")
    with pytest.raises(SpectrumkitError, match=r"expected limit > 0 \(an option of task "
                                               r"'seq-mnist'\), got 0$"):
        check_task_options("seq-mnist", {"limit": 0})
    with pytest.raises(SpectrumkitError, match=r"expected T to be an int .*got True$"):
        check_task_options("adding", {"T": True})
    with pytest.raises(SpectrumkitError, match=r"expected sample to be true or false"):
        check_task_options("1b", {"sample": "yes"})
    with pytest.raises(SpectrumkitError, match="expected variant to be one of 'row', 'pixel'"):
        check_task_options("seq-mnist", {"variant": "column"})
    with pytest.raises(SpectrumkitError, match="expected task name to be one of seq-mnist"):
        check_task_options("mnist", {})


def test_task_registry_imports_without_torch():
    """``spectrumkit.data.tasks`` (and what it imports) loads with torch made unimportable."""
    code = f"""
import importlib.abc, sys, types
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
for pkg, sub in (("spectrumkit", ""), ("spectrumkit.data", "/data")):
    m = types.ModuleType(pkg); m.__path__ = [{str(ROOT / "spectrumkit")!r} + sub]
    sys.modules[pkg] = m
from spectrumkit.data.tasks import check_task_options, task_names
print(task_names()[0], check_task_options("wikitext", {{"max_vocab": 50}}))
print(sorted(n for n in sys.modules if n == "torch" or n.startswith("torch.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["seq-mnist {'max_vocab': 50}", "[]"]


def test_registered_task_declares_its_options(parity_task):
    assert parity_task in task_names()
    assert check_task_options("parity", {"T": 4}) == {"T": 4}
    with pytest.raises(SpectrumkitError, match=r"task 'parity' \(T, n, seed\), got 'depth'"):
        check_task_options("parity", {"depth": 3})
    with pytest.raises(SpectrumkitError, match=r"expected n to be an int \(an option of task "
                                               r"'parity'\), got 'many'"):
        check_task_options("parity", {"n": "many"})
    with pytest.raises(SpectrumkitError, match="a name other than the built-in tasks"):
        register_task("copy", fx.parity)


# --------------------------------------------------------------------------------------------------
# Loading: what a loader may return
# --------------------------------------------------------------------------------------------------


def test_tensor_pool_is_split_by_the_documented_rule(parity_task):
    xs, ys = fx.parity_pool(5, 30, 7)
    assert torch.equal(ys, xs.squeeze(-1).sum(dim=1).long() % 2)  # labels: the closed form
    task = load_task("parity", T=5, n=30, seed=7)
    (tx, ty), (vx, vy) = _pool_split(xs, ys)
    assert (task.kind, task.input_size, task.num_classes, task.test) == \
        ("classification", 1, 2, None)
    assert torch.equal(task.train.xs, tx) and torch.equal(task.train.ys, ty)
    assert torch.equal(task.val.xs, vx) and torch.equal(task.val.ys, vy)
    assert (len(task.train), len(task.val)) == (24, 6)


def test_dataset_splits_become_a_language_task_with_per_step_targets():
    register_task("recall", fx.delayed_recall)
    try:
        task = load_task("recall", delay=2, symbols=3)
    finally:
        unregister_task("recall")
    ds = fx.RecallDataset(40, 2, 3, 0)
    assert (task.kind, task.vocab_size, len(task.train), len(task.val), len(task.test)) == \
        ("language", 5, 40, 10, 10)  # ids 0..4: blank, 3 symbols, the cue
    for i in (0, 17, 39):
        x, y = ds[i]
        assert torch.equal(task.train.xs[i], x) and torch.equal(task.train.ys[i], y)
    assert torch.equal(task.train.ys[:, -1], task.train.xs[:, 0])


def test_taskdata_from_a_loader_keeps_its_splits_under_the_registered_name():
    xs, ys = fx.parity_pool(4, 10, 1)
    data = TaskData("anything", "classification", SequenceDataset(xs, ys, "mine"),
                    SequenceDataset(xs[:3], ys[:3], "mine"), None, "my parity",
                    input_size=1, num_classes=2)
    register_task("own-data", lambda: data)
    try:
        task = load_task("own-data")
    finally:
        unregister_task("own-data")
    assert (task.name, task.description) == ("own-data", "my parity")
    assert task.train is data.train and task.val is data.val


def test_a_loader_of_the_wrong_type_is_one_line():
    register_task("parity-bad", fx.wrong_type)
    try:
        with pytest.raises(SpectrumkitError) as e:
            load_task("parity-bad")
    finally:
        unregister_task("parity-bad")
    assert str(e.value) == ("register_task loader 'parity-bad': expected TaskData, tensors or a "
                            "Dataset of sequences, got str")


def test_declared_kind_must_match_the_data():
    register_task("parity-as-lm", fx.parity, kind="language")
    try:
        with pytest.raises(SpectrumkitError, match="expected data of kind 'language' .* got data "
                                                   "of kind 'classification'"):
            load_task("parity-as-lm")
    finally:
        unregister_task("parity-as-lm")


# --------------------------------------------------------------------------------------------------
# Identity: the name and the fingerprint of the data
# --------------------------------------------------------------------------------------------------


def test_user_task_identity_follows_its_data(parity_task, monkeypatch):
    first = data_identity("parity")
    assert first["source"] == "user" and data_identity("parity") == first
    c = TrialConfig(task="parity", hidden_size=4, method="dense", sparsity=0.0, steps=1)
    key = trial_key(c, data=first)
    monkeypatch.setattr(fx, "FLIP", True)  # same name, same options, other labels
    flipped = data_identity("parity")
    assert flipped["fingerprint"] != first["fingerprint"]
    assert trial_key(c, data=flipped) != key
    monkeypatch.setattr(fx, "FLIP", False)
    assert data_identity("parity") == first


# --------------------------------------------------------------------------------------------------
# Through the API, `spectrumkit train` and a study
# --------------------------------------------------------------------------------------------------


def test_train_through_the_api_reports_the_error_of_its_model(parity_task):
    """After training, the reported val error equals the trained model's own argmax against the
    closed-form parity of the val inputs."""
    task = load_task("parity", T=6, n=60)
    model = make_model(task, "gru", 4, seed=3)
    res = train(model, task, training=TrainingConfig(steps=3, batch_size=8), seed=0, device="cpu",
                progress=False)
    assert res.status == "ok" and res.metrics["steps"] == 3
    with torch.no_grad():
        pred = model(task.val.xs).argmax(-1)
    parity = task.val.xs.squeeze(-1).sum(dim=1).long() % 2
    assert res.metrics["val_error_pct"] == pytest.approx(
        100.0 * float((pred != parity).float().mean()))


def _study(tmp_path: Path, task: str, data: str = "{ T = 5, n = 40 }", name: str = "own"
           ) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(f"""name = "{name}"
[grid]
method = ["dense", "random"]
[fixed]
task = "{task}"
data = {data}
cell = "gru"
hidden_size = 4
sparsity = 0.5
steps = 2
batch_size = 8
[presets.quick]
seeds = 1
[report]
table = {{ rows = "method", metric = "val_error_pct" }}
""")
    return p


def test_train_command_and_study_run_an_import_path_task_with_the_flag(tmp_path, cli):
    """The study's trial and `spectrumkit train` with the same settings agree: key and metrics."""
    run = run_study(_study(tmp_path, PARITY), out=str(tmp_path / "out"), allow_trial_code=True,
                    progress=False)
    assert run.statuses["ok"] == 2 and run.statuses["failed"] == 0
    spec = run.study
    dense = next(i for i, c in enumerate(spec.configs) if c.method == "dense")
    key = spec.keys[dense]
    trial = json.loads((run.dir / "trials" / f"{key}.json").read_text())
    r = cli("train", "--data", PARITY, "--allow-trial-code", "--data-option", "T=5",
            "--data-option", "n=40", "--hidden-size", 4, "--method", "dense", "--steps", 2,
            "--batch-size", 8,
            "--out", tmp_path / "train").ok()
    assert re.search(r"^key: ([0-9a-f]{64})$", r.stdout, re.M).group(1) == key
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())["metrics"]
    for k in ("val_loss", "val_error_pct"):
        assert metrics[k] == trial["metrics"][k], k
    assert spec.data[PARITY]["source"] == "user"


def test_import_path_task_without_the_flag_is_one_line(tmp_path, cli):
    line = cli("train", "--data", PARITY, "--steps", 1, "--out", tmp_path / "o").error_line()
    assert "--data" in line and "--allow-trial-code" in line
    line = cli("study", "run", str(_study(tmp_path, PARITY)), "--out",
               tmp_path / "out").error_line()
    assert "task" in line and "--allow-trial-code" in line and PARITY in line
    line = cli("study", "show", str(_study(tmp_path, PARITY))).error_line()
    assert "task" in line and "--allow-trial-code" in line
    assert not (tmp_path / "out").exists()


def test_wrong_type_loader_at_the_command_line_is_one_line(tmp_path, cli):
    line = cli("train", "--data", WRONG, "--allow-trial-code", "--steps", 1,
               "--out", tmp_path / "o").error_line()
    assert line == (f"error: register_task loader {WRONG!r}: expected TaskData, tensors or a "
                    "Dataset of sequences, got str")
    line = cli("study", "run", str(_study(tmp_path, WRONG, "{}")), "--allow-trial-code",
               "--out", tmp_path / "out").error_line()
    assert "expected TaskData, tensors or a Dataset of sequences, got str" in line
