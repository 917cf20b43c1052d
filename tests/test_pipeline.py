"""The one prune-and-train pipeline: a study trial re-run from the command its log prints gives
the same mask bit for bit, the same history and the same key; the command round-trips the config.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spectrumkit.errors import SpectrumkitError
from spectrumkit.masks import load_masks
from spectrumkit.pipeline import pack_mask, sub_seed, unpack_mask
from spectrumkit.study.config import TrialConfig


def _unpack_independently(packed: dict) -> dict[str, torch.Tensor]:
    """The study's mask record decoded here, without spectrumkit: base64 → bytes → bits, MSB
    first, row-major."""
    out = {}
    for name, rec in packed.items():
        raw = np.frombuffer(base64.b64decode(rec["packbits"]), dtype=np.uint8)
        n = int(np.prod(rec["shape"]))
        bits = [(int(raw[i // 8]) >> (7 - i % 8)) & 1 for i in range(n)]
        out[name] = torch.tensor(bits, dtype=torch.bool).reshape(rec["shape"])
    return out


STUDY = """name = "rerun"
description = "two tiny trials, each re-run from the command its log prints"
[grid]
method = ["jacobian", "l2"]
[fixed]
hidden_size = 8
sparsity = 0.8
steps = 6
eval_every = 3
batch_size = 16
score_batch = 8
estimator = "hutchinson"
score_options = { probes = 2 }
l2_stage_steps = 1
record = ["mask", "anatomy"]
data = { limit = 64, val_limit = 32 }
[presets.quick]
seeds = 1
[report]
table = { rows = "method", metric = "val_error_pct" }
"""


def _rerun(cli, result: dict, log: str, out: Path) -> None:
    """Run the command of ``log``'s reproduce line into ``out``; compare with the study's
    ``result``: the key, the mask bit for bit, the history apart from wall time."""
    key = result["key"]
    (line,) = [x for x in log.splitlines() if " reproduce: " in x]
    argv = shlex.split(line.split(" reproduce: ", 1)[1])
    assert argv[:2] == ["spectrumkit", "train"] and argv[-2:] == ["--out", "OUT"], argv
    # jacobian is the configuration's default method, so its line does not list --method
    assert ("--method" in argv) == (result["config"]["score"]["method"] != "jacobian")
    assert "--record" in argv
    r = cli(*argv[1:-1], out, "--device", "cpu", "--threads", "1")
    assert r.returncode == 0, r.stderr
    # the key: printed, stored, and the study's
    assert f"key: {key}" in r.stdout.splitlines()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["key"] == key
    # the mask, bit for bit
    study_mask = _unpack_independently(result["artifacts"]["mask"])
    cli_mask = next(iter(load_masks(out / "mask.pt")[0].values()))  # the one mask file format
    assert list(study_mask) == list(cli_mask) and study_mask
    for name in study_mask:
        assert torch.equal(study_mask[name], cli_mask[name]), name
    kept = sum(int(m.sum()) for m in cli_mask.values())
    assert kept == result["metrics"]["kept"] == round(0.2 * result["metrics"]["prunable"])
    assert metrics["artifacts"]["mask"] == result["artifacts"]["mask"]
    # the history, apart from wall time
    want = pd.DataFrame(result["history"]).drop(columns="seconds")
    got = pd.read_csv(out / "history.csv").drop(columns="seconds")
    assert len(want) == 2 and list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=True)
    assert metrics["metrics"]["val_error_pct"] == result["metrics"]["val_error_pct"]


def test_a_study_trial_reruns_bit_for_bit_from_the_command_in_its_log(tmp_path, cli):
    """The acceptance test of the pipeline: study trial → its log's command → the same mask (bit
    for bit), the same history apart from wall time, and the same key; for a score (the
    Hutchinson Jacobian score: its randomness too) and for the iterative L2 baseline."""
    toml = tmp_path / "rerun.toml"
    toml.write_text(STUDY)
    r = cli("study", toml, "--out", tmp_path / "res", "--device", "cpu", "--no-figures",
            "--threads", "1")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "res" / "rerun"
    results = [json.loads(p.read_text()) for p in sorted((folder / "trials").glob("*.json"))]
    assert sorted(x["config"]["score"]["method"] for x in results) == ["jacobian", "l2"]
    for result in results:
        assert result["status"] == "ok"
        log = (folder / "logs" / f"{result['key']}.log").read_text()
        _rerun(cli, result, log, tmp_path / result["config"]["score"]["method"])


def test_the_reproduce_line_comes_first_and_names_the_data_root(tmp_path):
    """The command is logged before anything can fail, with the study's --data-root."""
    from spectrumkit.cli.cmd_train import train_command
    from spectrumkit.study.executors import TrialContext
    from spectrumkit.study.trial import run_trial

    c = TrialConfig(method="random", sparsity=0.5, hidden_size=4, steps=1)
    lines: list[str] = []
    root = str(tmp_path / "no data here")
    with pytest.raises(SpectrumkitError):
        run_trial(c, TrialContext(device="cpu", data_root=root, log=lines.append))
    assert lines == [f"reproduce: {train_command(c, data_root=root)}"]
    assert lines[0].endswith(f"--data-root {shlex.quote(root)} --out OUT")


# Two configs that, together, set every field of TrialConfig to a value that is not the
# command's default (l2_stage_steps only applies to l2; embed_size and softmax_samples to a word
# task; epochs and steps exclude each other).
FULL = [
    dict(seed=5, task="wikitext", data={"limit": 3000, "max_vocab": 500}, cell="gru",
         hidden_size=12, embed_size=6, softmax_samples=20, init="normal:0.07;bias=zero",
         method="jacobian", sparsity=0.75, scope="per_tensor", include_bias=True,
         normalize="none", horizon="all", estimator="hutchinson", through_time=True,
         score_batch=9, score_options={"probes": 3, "batch_size": 8, "discount": 0.9},
         score_repeats=2, recipe="legacy",
         pipeline="authors", block_swap=False, epochs=2, batch_size=7, lr=0.003,
         optimizer="sgd", clip=0.5, eval_every=3,
         record=["mask", "sv_hist", "lyapunov", "anatomy", "spectrum_steps", "connection_map"],
         spectrum_batch=5, spectrum_method="lanczos", hist_bins=12, lyapunov_k=3),
    dict(seed=2, method="l2", sparsity=0.9, l2_stage_steps=3, steps=12, cell="lstm",
         dtype="float64", task="adding", data={"T": 6, "n_train": 40}, record=["mask"]),
    dict(method="random", sparsity=0.5, steps=1, hidden_size=4, block_swap=True,
         score_options={"balance": "gate"}),
]


def _parse(command: str) -> TrialConfig:
    """The config `spectrumkit train` builds from ``command``, through click's own parser."""
    from spectrumkit.cli.cmd_train import config_from_params, train_cmd

    argv = shlex.split(command)
    assert argv[:2] == ["spectrumkit", "train"], argv
    with train_cmd.make_context("train", argv[2:]) as ctx:
        return config_from_params(ctx.params)


@pytest.mark.parametrize("i", range(len(FULL)))
def test_train_command_round_trips_the_config(i):
    from spectrumkit.cli.cmd_train import train_command

    c = TrialConfig(**FULL[i])
    command = train_command(c, data_root=None if i else "/data/my root")
    back = _parse(command)
    assert back == c, (command, back.model_dump(), c.model_dump())
    assert ("--data-root '/data/my root'" in command) == (i == 0)
    assert command.endswith(" --out OUT")


def test_every_config_field_has_a_flag_and_the_full_configs_set_them_all():
    from spectrumkit.cli.cmd_train import train_cmd
    from spectrumkit.config.flags import EXCLUDED_OPTIONS, score_option_fields, setting_flags

    keys = {f.key for f in setting_flags()}
    fields = set(TrialConfig.input_keys()) - {"trial", "score"}  # the flat keys of a config
    assert fields <= keys
    assert fields <= {k for d in FULL for k in d}
    names = {p.name for p in train_cmd.params}
    assert keys <= names
    # every score option of every method has a flag of its own, but the excluded two
    assert set(score_option_fields(exclude=EXCLUDED_OPTIONS)) <= names
    assert set(EXCLUDED_OPTIONS) == {"batch_size", "density"}


def test_train_command_fails_loudly_for_a_config_it_cannot_express():
    from spectrumkit.cli import cmd_train

    with pytest.raises(SpectrumkitError, match=r"expected a prune-train trial"):
        cmd_train.train_command(TrialConfig(steps=1, trial="tests.study_fake:run"))


def test_train_command_lists_only_what_differs_from_the_defaults():
    from spectrumkit.cli.cmd_train import train_command
    from spectrumkit.scores.recipes import DEFAULT_RECIPE

    # jacobian and hidden 400 are the configuration's defaults; the default recipe is written
    # out by the config and brings horizon 4 and estimator 'ones'; the record is kept
    c = TrialConfig(method="jacobian", sparsity=0.9, hidden_size=400, steps=5,
                    recipe=DEFAULT_RECIPE, horizon=4, estimator="ones", record=["mask"])
    assert train_command(c) == ("spectrumkit train --sparsity 0.9 --steps 5 "
                                "--record mask --out OUT")
    # 'authors' brings estimator 'transpose': only the recipe and what differs from it
    c = TrialConfig(method="jacobian", sparsity=0.9, steps=5, recipe="authors",
                    estimator="transpose", horizon=8, hidden_size=128)
    assert train_command(c) == ("spectrumkit train --hidden-size 128 --sparsity 0.9 "
                                "--steps 5 --horizon 8 --recipe authors --out OUT")
    assert train_command(TrialConfig(method="dense", hidden_size=128, epochs=2)) == \
        "spectrumkit train --method dense --hidden-size 128 --epochs 2 --out OUT"
    assert train_command(TrialConfig(epochs=1)) == "spectrumkit train --out OUT"  # the default


@pytest.mark.parametrize("args, needle", [
    (["--method", "random", "--sparsity", "0.5", "--score-option", "horizon=4"],
     "--horizon 4, which this run would ignore"),
    (["--hist-bins", "10"], "--hist-bins 10, which this run would ignore"),
    (["--method", "random", "--sparsity", "0.5", "--score-option", "balance=gate",
      "--score-option", "gamma_steps=3"], "--gamma-steps 3, which this run would ignore"),
    (["--method", "magnitude", "--sparsity", "0.5", "--scope", "per_tensor", "--pipeline",
      "authors", "--cell", "lstm"], "expected cell 'gru_cho' or 'gru' with pipeline='authors'"),
    (["--method", "snip", "--sparsity", "0.5", "--stage-steps", "2"],
     "--stage-steps 2, which this run would ignore"),
    (["--hidden-size", "0"], "spectrumkit train: expected --hidden-size greater than 0, got 0"),
    (["--lr", "inf"], "spectrumkit train: expected --lr to be a finite number > 0, got inf"),
    (["--score-batch", "4", "--method", "random", "--sparsity", "0.5", "--score-repeats", "0"],
     "spectrumkit train: expected --score-repeats greater than 0"),
    (["--softmax-samples", "5"], "--softmax-samples only for a word-level language task"),
])
def test_cli_refuses_flags_the_config_would_drop_or_refuse(tmp_path, args, needle, cli):
    r = cli("train", "--steps", "1", "--out", str(tmp_path / "o"), *args)
    assert r.exit_code == 2, (r.output, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert not (tmp_path / "o").exists()


def test_sub_seed_is_the_first_8_bytes_of_sha256_little_endian_halved():
    for seed, purpose in [(0, "scores"), (3, "score-batch"), (2**40, "spectrum-batch")]:
        d = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
        want = sum(b << (8 * i) for i, b in enumerate(d[:8])) // 2
        assert sub_seed(seed, purpose) == want


def test_pack_mask_is_numpy_packbits_and_unpacks_exactly():
    g = torch.Generator().manual_seed(0)
    mask = {"W_ih": torch.rand(6, 5, generator=g) < 0.3, "b": torch.rand(7, generator=g) < 0.5,
            "one": torch.tensor([True]), "empty": torch.zeros(0, 3, dtype=torch.bool)}
    packed = pack_mask(mask)
    assert json.loads(json.dumps(packed)) == packed
    assert packed["one"] == {"shape": [1], "packbits": base64.b64encode(b"\x80").decode()}
    for name, m in {**unpack_mask(packed), **_unpack_independently(packed)}.items():
        assert torch.equal(m, mask[name]) and m.dtype == torch.bool, name
    # 1 0 1 0 0 1 → 0b10100100 = 164
    row = torch.tensor([True, False, True, False, False, True])
    assert base64.b64decode(pack_mask({"r": row})["r"]["packbits"]) == bytes([164])
    with pytest.raises(SpectrumkitError, match=r"unpack_mask: expected 4 packed bytes"):
        unpack_mask({"W_ih": {"shape": [6, 5], "packbits": base64.b64encode(b"\0").decode()}})
