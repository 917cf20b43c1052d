"""Every size a user sets goes through one memory estimate before anything is allocated: the
refusal is one line naming the flag, the estimate and the memory available."""

from __future__ import annotations

import re

import pytest

import spectrumkit.errors as errors
from spectrumkit.errors import SpectrumkitError

GIB = 2**30


@pytest.fixture
def one_gib(monkeypatch):
    """The machine has 1 GiB free (the check reads available_memory)."""
    monkeypatch.setattr(errors, "available_memory", lambda device="cpu": GIB)


def _needed(line: str) -> float:
    """The estimate quoted by the refusal, in bytes."""
    m = re.search(r"at least ([\d.,e+]+) GiB needed", line)
    assert m, line
    return float(m.group(1).replace(",", "")) * GIB


# (argv, the flag named, the bytes torch would allocate first: the (T, B, D) float32 inputs)
CASES = [
    (("spectrum", "--cell", "gru", "--hidden-size", "8", "--seq-len", "10000000"), "--seq-len 10000000",
     10_000_000 * 64 * 28 * 4),
    (("prune", "--hidden-size", "8", "--seq-len", "10000000"), "--seq-len 10000000",
     10_000_000 * 64 * 28 * 4),
    (("prune", "--hidden-size", "8", "--score-batch", "10000000"), "--score-batch 10000000",
     28 * 10_000_000 * 28 * 4),
    (("prune", "--hidden-size", "8", "--gamma-steps", "100000000"), "--gamma-steps 100000000",
     100_000_000 * 100 * 28 * 4),
    (("prune", "--hidden-size", "8", "--gamma-sequences", "100000000"), "--gamma-sequences 100000000",
     5 * 100_000_000 * 28 * 4),
]


@pytest.mark.parametrize("argv,flag,inputs", CASES, ids=[c[1].split()[0] for c in CASES])
def test_a_size_that_cannot_fit_is_one_line_naming_the_flag(cli, one_gib, tmp_path, argv, flag,
                                                            inputs):
    args = [*argv, "--out", str(tmp_path / ("sp" if argv[0] == "spectrum" else "m.pt"))]
    line = cli(*args).error_line()
    assert flag in line and "1 GiB available" in line, line
    assert _needed(line) >= inputs * 0.999  # a lower bound that covers the first allocation
    assert not any(tmp_path.iterdir())


def test_sizes_that_fit_are_not_refused(cli, one_gib, tmp_path):
    cli("prune", "--hidden-size", "8", "--seq-len", "5", "--score-batch", "4",
        "--out", str(tmp_path / "m.pt")).ok()


def test_a_study_estimates_its_largest_trial_at_load(one_gib):
    from spectrumkit.study import load_study

    with pytest.raises(SpectrumkitError, match=r"hidden_size 100000.*1 GiB available") as e:
        load_study("sparsity", "paper", overrides=["hidden_size=100000"])
    assert "\n" not in str(e.value)


def test_a_study_estimates_its_spectra_at_load(one_gib):
    from spectrumkit.study import load_study

    # 2 · 10^6 sequences × 400² entries × 4 bytes = 1,192 GiB for the dense spectra of one step
    with pytest.raises(SpectrumkitError, match=r"spectrum_batch 1000000.*1 GiB available") as e:
        load_study("spectrum", "quick", overrides=["spectrum_batch=1000000",
                                                   "hidden_size=400"])
    assert "\n" not in str(e.value) and _needed(str(e.value)) >= 2 * 10**6 * 400**2 * 4 * 0.99


def test_memory_terms_name_the_largest_and_sum_all(one_gib):
    with pytest.raises(SpectrumkitError) as e:
        errors.check_memory_terms("f", {"--a 1": 2**28, "--b 2": 2**27}, itemsize=4)
    msg = str(e.value)
    assert msg.startswith("f: expected --a 1 ") and "1.5 GiB needed" in msg, msg
    errors.check_memory_terms("f", {"--a 1": 2**27}, itemsize=4)  # 0.5 GiB fits


TRAIN = ("train", "--data", "seq-mnist", "--data-option", "limit=32", "--data-option",
         "val_limit=16", "--cell", "gru", "--hidden-size", "4", "--steps", "1", "--batch-size", "8",
         "--sparsity", "0.5")


@pytest.mark.parametrize("extra,flag", [
    (("--method", "jacobian", "--gamma-inputs", "gaussian", "--gamma-steps", "100000000"),
     "--gamma-steps 100000000"),
    (("--method", "snip", "--score-batch", "100000000"), "--score-batch 100000000"),
    # dense spectra of a 4-unit GRU: 2 × B × S² float32 entries = 2 · 10^8 · 16 · 4 B = 11.9 GiB
    (("--method", "random", "--record", "sv_hist", "--spectrum-batch", "100000000"),
     "--spectrum-batch 100000000"),
], ids=["gamma-steps", "score-batch", "spectrum-batch"])
def test_train_sizes_go_through_the_same_estimate(cli, one_gib, tmp_path, extra, flag):
    line = cli(*TRAIN, *extra, "--out", str(tmp_path / "run")).error_line()
    assert flag in line and "1 GiB available" in line, line
