"""One meaning per flag across the commands (NOTE [One CLI vocabulary] in cli/_vocabulary.py):
old flag names are refused in one line naming the new one, the new flags refuse bad values in
one line naming the flag, --device has one parser, and the group lists its lazy commands with
their own one-line help (NOTE [Lazy commands])."""

from __future__ import annotations

import click
import pytest

from spectrumkit._device import check_device_name
from spectrumkit.errors import SpectrumkitError
from tests.cases import TINY_PRUNE, TINY_SPECTRUM

# (command, the old flag, the flag that replaces it): the renames, written out by hand
RENAMES = [
    ("cells", "--hidden", "--hidden-size"),
    ("prune", "--hidden", "--hidden-size"),
    ("spectrum", "--hidden", "--hidden-size"),
    ("train", "--hidden", "--hidden-size"),
    ("prune", "--steps", "--seq-len"),
    ("prune", "--batch-size", "--score-batch"),
    ("prune", "--iterations", "--synflow-rounds"),
    ("prune", "--probes", "--hutchinson-probes"),
    ("train", "--iterations", "--synflow-rounds"),
    ("train", "--probes", "--hutchinson-probes"),
    ("spectrum", "--steps", "--jacobian-steps"),
    ("spectrum", "--batch", "--spectrum-batch"),
    ("spectrum", "--iterations", "--lanczos-iterations"),
    ("spectrum", "--probes", "--lanczos-probes"),
    ("spectrum", "--top-k", "--lanczos-top-k"),
    ("spectrum", "--tol", "--lanczos-tol"),
]


@pytest.mark.parametrize("command,old,new", RENAMES, ids=[f"{c}{o}" for c, o, _ in RENAMES])
def test_an_old_flag_name_is_one_line_naming_the_new_one(tmp_path, cli, command, old, new):
    line = cli(command, old, "3", "--out", tmp_path / "o").error_line(alone=True)
    assert line.startswith(f"error: spectrumkit {command}: {old} was renamed; use {new} "), line
    assert not (tmp_path / "o").exists()


def test_an_unknown_flag_that_was_never_renamed_stays_clicks_message(cli):
    line = cli("prune", "--stepz", "3").error_line(alone=True)
    assert "No such option '--stepz'" in line and "renamed" not in line


# (argv, what the one error line must name): each new flag with a value it refuses
_S = [*TINY_SPECTRUM]
_P = [*TINY_PRUNE]
NEW_FLAGS = {
    "prune --seq-len 0": ([*_P, "--seq-len", "0"], "--seq-len to be a positive integer"),
    "prune --score-batch 0": ([*_P, "--score-batch", "0"],
                              "--score-batch to be a positive integer"),
    "prune --synflow-rounds 0": ([*_P, "--method", "synflow", "--synflow-rounds", "0"],
                                 "--synflow-rounds to be a positive integer"),
    "prune --hutchinson-probes without hutchinson": (
        [*_P, "--hutchinson-probes", "2"], "--hutchinson-probes only together with"),
    "prune --synflow-rounds with jacobian": (
        [*_P, "--synflow-rounds", "2"], "score options that apply to jacobian, got "
                                        "--synflow-rounds"),
    "prune --device tpu": ([*_P, "--device", "tpu"],
                           "'--device': expected auto, cpu, cuda or cuda:K, got 'tpu'"),
    "prune --device cuda:x": ([*_P, "--device", "cuda:x"], "got 'cuda:x'"),
    "prune --dtype float16": ([*_P, "--dtype", "float16"],
                              "'--dtype': 'float16' is not one of 'float32', 'float64'"),
    "prune --json=yes": ([*_P, "--json=yes"], "--json"),
    "spectrum --spectrum-batch 0": ([*_S, "--spectrum-batch", "0"],
                                    "--spectrum-batch to be a positive integer"),
    "spectrum --jacobian-steps first:2": ([*_S, "--jacobian-steps", "first:2"],
                                          "expected --jacobian-steps as last:U, all"),
    "spectrum --jacobian-steps last:9": ([*_S, "--jacobian-steps", "last:9"],
                                         "expected --jacobian-steps (last U) in 1..6"),
    "spectrum --lanczos-iterations 0": (
        [*_S, "--method", "lanczos", "--lanczos-iterations", "0"],
        "--lanczos-iterations to be a positive integer"),
    "spectrum --lanczos-probes 0": ([*_S, "--method", "lanczos", "--lanczos-probes", "0"],
                                    "--lanczos-probes"),
    "spectrum --lanczos-top-k without lanczos": ([*_S, "--lanczos-top-k", "2"],
                                                 "--lanczos-top-k only with --method lanczos"),
    "spectrum --lanczos-tol 0": ([*_S, "--method", "lanczos", "--lanczos-tol", "0"],
                                 "--lanczos-tol to be a finite number > 0"),
    "spectrum --device cuda:": ([*_S, "--device", "cuda:"], "got 'cuda:'"),
    "spectrum --dtype half": ([*_S, "--dtype", "half"], "'--dtype': 'half' is not one of"),
    "spectrum --json=1": ([*_S, "--json=1"], "--json"),
    "study run --device gpu": (["study", "run", "init-ablation", "--device", "gpu"],
                               "'--device': expected auto, cpu, cuda or cuda:K, got 'gpu'"),
    "study NAME --device cuda:k": (["study", "init-ablation", "--device", "cuda:k"],
                                   "got 'cuda:k'"),
    "study list --json=x": (["study", "list", "--json=x"], "--json"),
    "study show --json=x": (["study", "show", "init-ablation", "--json=x"], "--json"),
    "cells --json=x": (["cells", "--json=x"], "--json"),
}


@pytest.mark.parametrize("case", list(NEW_FLAGS))
def test_a_new_flag_refuses_a_bad_value_in_one_line_naming_it(tmp_path, cli, case):
    argv, needle = NEW_FLAGS[case]
    out = [] if argv[0] in ("study", "cells") else ["--out", tmp_path / "o"]
    r = cli(*argv, *out)
    line = r.error_line(alone=True)
    assert needle in line, line
    assert r.stdout == "" and not (tmp_path / "o").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the machine has a GPU")
def test_a_device_this_machine_lacks_is_one_line_naming_the_flag(tmp_path, cli):
    for argv in ([*TINY_PRUNE, "--device", "cuda:1"], [*TINY_SPECTRUM, "--device", "cuda",
                                                       "--out", tmp_path / "s"],
                 ["study", "init-ablation", "--device", "cuda:0", "--out", tmp_path / "r"]):
        line = cli(*argv).error_line(alone=True)
        assert "expected --device auto, cpu, cuda or cuda:K that this machine has, got " \
               f"--device {argv[argv.index('--device') + 1]} " in line, line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:15"])
def test_the_device_forms_are_accepted_as_written(name):
    assert check_device_name("f", "--device", name) == name


@pytest.mark.parametrize("name", ["tpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:01", "",
                                  " cpu", "cpu:0", "mps", 0])
def test_other_device_names_are_refused(name):
    with pytest.raises(SpectrumkitError) as e:
        check_device_name("f", "--device", name)
    assert str(e.value) == f"f: expected --device auto, cpu, cuda or cuda:K, got {name!r}"


def test_a_study_run_takes_cuda_k_in_its_options():
    from pydantic import ValidationError

    from spectrumkit.study.runner import RunOptions

    assert RunOptions(device="cuda:3").device == "cuda:3"
    with pytest.raises(ValidationError, match="cuda:x"):
        RunOptions(device="cuda:x")


def test_every_computing_command_takes_device_and_dtype_of_the_one_kind():
    """prune, spectrum, train and study run: --device of the shared type and --dtype
    float32/float64."""
    from spectrumkit.cli import main
    from spectrumkit.cli._vocabulary import Device

    ctx = click.Context(main)
    study = main.get_command(ctx, "study")
    commands = {"prune": main.get_command(ctx, "prune"),
                "spectrum": main.get_command(ctx, "spectrum"),
                "study run": study.get_command(ctx, "run")}  # type: ignore[union-attr]
    for name, cmd in commands.items():
        params = {p.name: p for p in cmd.params}
        assert isinstance(params["device"].type, Device), name
        assert params["device"].default == "auto", name
        assert tuple(params["dtype"].type.choices) == ("float32", "float64"), name
    train = {p.name: p for p in main.get_command(ctx, "train").params}
    assert tuple(train["dtype"].type.choices) == ("float32", "float64")
    assert isinstance(train["device"].type, Device)


def test_the_group_lists_each_lazy_command_with_its_own_short_help():
    """The one-line helps of `spectrumkit --help` and `spectrumkit study --help` come from a
    table (so the commands need not be imported): each equals the loaded command's own."""
    from spectrumkit.cli import main

    ctx = click.Context(main)
    groups = [main, main.get_command(ctx, "study")]
    for group in groups:
        for name, (_, short) in group.lazy.items():  # type: ignore[union-attr]
            cmd = group.get_command(ctx, name)  # type: ignore[union-attr]
            assert cmd is not None and cmd.name == name
            assert cmd.get_short_help_str(limit=10_000) == short, name
