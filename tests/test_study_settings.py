"""How a study's settings combine: the seed belongs to the run (never to a preset), and the
training budget is one setting, spelled epochs or steps, that an override may switch."""

from __future__ import annotations

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import load_study


def test_a_seed_in_a_preset_is_refused_like_everywhere_else():
    with pytest.raises(SpectrumkitError, match=r"a key of \[presets.quick\] .* got unknown key "
                                               r"'seed'"):
        load_study("sparsity", "quick", overrides=["presets.quick.seed=5"])
    with pytest.raises(SpectrumkitError, match=r"got unknown key 'seed'"):
        load_study("sparsity", "quick", overrides=["fixed.seed=5"])


def test_a_seed_in_a_preset_is_one_line_at_the_command_line(cli):
    line = cli("study", "show", "sparsity", "--set", "presets.quick.seed=5").error_line()
    assert "'seed'" in line and "presets.quick" in line


def test_steps_override_switches_an_epochs_study_to_steps(cli):
    base = load_study("sparsity", "quick")
    assert {c.epochs for c in base.configs} != {None} and {c.steps for c in base.configs} == {None}
    switched = load_study("sparsity", "quick", overrides=["steps=2"])
    assert {(c.epochs, c.steps) for c in switched.configs} == {(None, 2)}
    out = cli("study", "show", "sparsity", "--set", "steps=2", "--keys").ok().stdout
    shown = out.split("keys:", 1)[1].split()
    assert shown == list(switched.keys)
    assert not set(shown) & set(base.keys)  # other trials: the budget is in the key
    back = load_study("sparsity", "quick", overrides=["steps=2", "epochs=1"])
    assert {(c.epochs, c.steps) for c in back.configs} == {(1, None)}
