"""Shell completion (NOTE [Shell completion] in cli/__init__.py): click's completion of the
commands and options, and the study names after ``study``, ``study show`` and ``study run``."""

from __future__ import annotations

import pytest
from click.shell_completion import ShellComplete

from spectrumkit.cli import main
from spectrumkit.study.spec import list_studies


def _complete(args: list[str], incomplete: str) -> list[tuple[str, str]]:
    comp = ShellComplete(main, {}, "spectrumkit", "_SPECTRUMKIT_COMPLETE")
    return [(i.value, i.type) for i in comp.get_completions(args, incomplete)]


@pytest.mark.parametrize("args", [["study", "show"], ["study", "run"]])
def test_study_names_complete(args):
    assert _complete(args, "") == [(n, "plain") for n in list_studies()]
    assert _complete(args, "init") == [("init-ablation", "plain")]
    assert _complete(args, "re") == [("recipe-ablation", "plain")]
    assert _complete(args, "nothing-like-it") == []


def test_a_path_completes_as_a_file():
    assert _complete(["study", "show"], "./my") == [("./my", "file")]


def test_after_study_the_subcommands_then_the_study_names():
    got = [v for v, _ in _complete(["study"], "")]
    assert got == ["export", "list", "run", "show", "tensorboard", *list_studies()]
    assert _complete(["study"], "sp") == [("sparsity", "plain"), ("spectrum", "plain")]


def test_commands_and_renamed_options_complete():
    assert [v for v, _ in _complete([], "")] == ["cells", "export", "figures", "prune",
                                                  "spectrum", "study", "train"]
    assert _complete(["prune"], "--seq") == [("--seq-len", "plain")]
    assert _complete(["spectrum"], "--lanczos-i") == [("--lanczos-iterations", "plain")]
    assert _complete(["prune"], "--steps") == []  # renamed: no longer offered


@pytest.mark.slow
def test_the_entry_point_prints_the_bash_script_and_completes(cli):
    """What the docs tell a user to run: ``_SPECTRUMKIT_COMPLETE=bash_source spectrumkit``."""
    r = cli.subprocess(env={"_SPECTRUMKIT_COMPLETE": "bash_source"})
    assert r.returncode == 0 and "_spectrumkit_completion()" in r.stdout
    assert "complete -o nosort -F _spectrumkit_completion spectrumkit" in r.stdout
    r = cli.subprocess(env={"_SPECTRUMKIT_COMPLETE": "bash_complete",
                            "COMP_WORDS": "spectrumkit study show ini", "COMP_CWORD": "3"})
    assert r.returncode == 0 and r.stdout.splitlines() == ["plain,init-ablation"]
