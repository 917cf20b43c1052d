"""One way to declare a study's trials: fixed fields × a product of axes (NOTE [Study axes]).

``tests/data/study_trial_keys.json`` holds, for every shipped study and preset, each trial's key
and its row labels as the earlier study format (``[[rows]]``, ``[[presets.P.cases]]``,
``[[presets.P.extra]]``) resolved them, dumped before the format changed. The shipped studies,
rewritten in the one form, must run exactly the same trials: same keys (so the results already
on disk are kept), same row labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import list_studies, load_study
from spectrumkit.study._spec_checks import parse_toml
from spectrumkit.study.spec import study_file

BEFORE = json.loads((Path(__file__).parent / "data" / "study_trial_keys.json").read_text())

#: The one set of trials that changes by design: the spectrum study's paper preset gave its
#: WikiText trial ``data = {}``, which the earlier format merged key by key with the preset's
#: seq-MNIST options (``scale = "paper"``), so that trial was refused when it ran. A table now
#: replaces the field: the trial has no data options, and its key (which covers them) is new.
CHANGED = {"spectrum/paper": {"task": "wikitext", "data_before": {"scale": "paper"}}}


def _presets(name: str) -> list[str]:
    return list(parse_toml("t", *study_file(name))["presets"])


def test_the_fixture_covers_every_shipped_study_and_preset():
    assert sorted(BEFORE) == sorted(f"{n}/{p}" for n in list_studies() for p in _presets(n))
    assert len(BEFORE) == 22


@pytest.mark.parametrize("which", sorted(BEFORE))
def test_shipped_studies_keep_their_trial_keys_and_order(which):
    name, preset = which.split("/")
    s = load_study(name, preset)
    before = [e["key"] for e in BEFORE[which]]
    if which in CHANGED:
        want = CHANGED[which]
        moved = [i for i, c in enumerate(s.configs) if c.task == want["task"]]
        assert len(moved) == s.seeds == 3
        assert all(s.configs[i].data == {} for i in moved)
        same = [i for i in range(len(s.configs)) if i not in moved]
        assert [s.keys[i] for i in same] == [before[i] for i in same]
        assert not {s.keys[i] for i in moved} & set(before)
        return
    assert s.keys == before  # the same trials, in the same order


@pytest.mark.parametrize("which", sorted(BEFORE))
def test_shipped_studies_keep_their_row_labels(which):
    """Where the earlier format had rows, the axis ``row`` gives each trial the same labels."""
    name, preset = which.split("/")
    s = load_study(name, preset)
    before = [(e["key"], lab["row"]) for e in BEFORE[which] for lab in e["labels"] if lab]
    now = [(k, labs["row"]) for k, labs in s.labelled_keys() if "row" in labs]
    assert sorted(now) == sorted(before)
    assert bool(before) == (name == "recipe-ablation")


def test_language_paper_is_one_axis_per_data_set_outside_the_methods():
    s = load_study("language", "paper")
    assert s.grid == {"corpus": ["WikiText-2", "WikiText-103", "One Billion Words"],
                      "method": ["jacobian", "random"]}
    got = [(c.seed, c.task, c.method, c.steps, c.softmax_samples, c.data) for c in s.configs[:6]]
    assert got == [(0, "wikitext", "jacobian", 20000, None, {}),
                   (0, "wikitext", "random", 20000, None, {}),
                   (0, "wikitext-103", "jacobian", 12000, 1000, {}),
                   (0, "wikitext-103", "random", 12000, 1000, {}),
                   (0, "1b", "jacobian", 30000, 1000, {"max_vocab": 100000}),
                   (0, "1b", "random", 30000, 1000, {"max_vocab": 100000})]
