"""Study overrides (``load_study(..., overrides=...)``, ``spectrumkit study NAME --set KEY=VALUE``).

NOTE [Study overrides] in spectrumkit/study/spec.py is the rule under test: an override changes
the TOML before validation, so the trials of a run with ``--set`` must be exactly the trials of
the TOML edited by hand. Each case below writes the original TOML and the hand-edited one
literally and compares the trial keys (and the rows' keys) through the library, ``study show
--keys`` and the ``spec.json`` of a run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import TrialConfig, load_study
from spectrumkit.study.spec import parse_override

FAKE = "tests.study_fake:run"

# Case 1: a bare field (also set in a preset), a dict field's key, a grid axis replaced by a
# list, a preset's seeds and a [fixed] setting; the preset adds an axis.
BASE_1 = f"""
name = "ovr"
[grid]
method = ["jacobian", "random"]
[fixed]
trial = "{FAKE}"
epochs = 1
lr = 0.001
data = {{ sleep = 0.0 }}
[presets.quick]
seeds = 2
hidden_size = 8
[presets.quick.grid]
sparsity = [0.9, 0.95]
[presets.paper]
seeds = 3
[report]
table = {{ rows = "sparsity", cols = "method", metric = "val_error_pct" }}
"""
SETS_1 = ["hidden_size=16", "grid.method=['random', 'snip']", "presets.quick.seeds=3",
          "fixed.epochs=2", "data.fail=false"]
EDITED_1 = f"""
name = "ovr"
[grid]
method = ["random", "snip"]
[fixed]
trial = "{FAKE}"
epochs = 2
lr = 0.001
data = {{ sleep = 0.0, fail = false }}
hidden_size = 16
[presets.quick]
seeds = 3
[presets.quick.grid]
sparsity = [0.9, 0.95]
[presets.paper]
seeds = 3
[report]
table = {{ rows = "sparsity", cols = "method", metric = "val_error_pct" }}
"""

# Case 2: a labelled axis. A bare field that the variants set (they become the same trials,
# shared by both labels), an axis of the preset's grid, and a string value given as a bare word.
BASE_2 = f"""
name = "ovr-rows"
[grid]
method = ["jacobian", "random"]
[fixed]
trial = "{FAKE}"
epochs = 1
[presets.quick]
seeds = 1
[presets.quick.grid]
hidden_size = [8, 16]
[[grid.row]]
label = "a"
lr = 0.01
[[grid.row]]
label = "b"
lr = 0.02
[report]
table = {{ rows = "row", cols = "method", metric = "val_error_pct" }}
"""
SETS_2 = ["lr=0.5", "presets.quick.grid.hidden_size=[24]", "fixed.init=glorot"]
EDITED_2 = f"""
name = "ovr-rows"
[grid]
method = ["jacobian", "random"]
[fixed]
trial = "{FAKE}"
epochs = 1
lr = 0.5
init = "glorot"
[presets.quick]
seeds = 1
[presets.quick.grid]
hidden_size = [24]
[[grid.row]]
label = "a"
[[grid.row]]
label = "b"
[report]
table = {{ rows = "row", cols = "method", metric = "val_error_pct" }}
"""

CASES = [pytest.param(BASE_1, SETS_1, EDITED_1, id="bare-grid-preset-fixed"),
         pytest.param(BASE_2, SETS_2, EDITED_2, id="rows")]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------ the values


def test_values_are_toml_and_a_bare_word_is_a_string():
    got = [parse_override(t).value for t in (
        "hidden_size=64", "lr=1e-3", "x=true", 'x="64"', "init=glorot", 'grid.init=["glorot"]',
        "data={scale = 0.5, n = 2}", "x=normal:0.1", "x=")]
    assert got == [64, 0.001, True, "64", "glorot", ["glorot"], {"scale": 0.5, "n": 2},
                   "normal:0.1", ""]
    o = parse_override(" presets.quick.seeds = 3 ")
    assert (o.path, o.value, o.given) == (("presets", "quick", "seeds"), 3,
                                          " presets.quick.seeds = 3 ")
    for bad in ("hidden_size", "=3", "a..b=1", "grid.in it=1"):
        with pytest.raises(SpectrumkitError, match="load_study: expected an override KEY=VALUE"):
            parse_override(bad)


# ------------------------------------------------------------- --set equals editing the TOML


@pytest.mark.parametrize("base,sets,edited", CASES)
def test_overrides_change_the_keys_as_editing_the_toml(tmp_path, base, sets, edited):
    b = _write(tmp_path, "base.toml", base)
    e = _write(tmp_path, "edited.toml", edited)
    by_set = load_study(b, "quick", overrides=sets)
    by_hand = load_study(e, "quick")
    assert by_set.keys == by_hand.keys and len(set(by_set.keys)) == len(by_hand.configs)
    assert by_set.keys != load_study(b, "quick").keys
    assert by_set.label_keys == by_hand.label_keys
    assert by_set.grid == by_hand.grid and by_set.fixed == by_hand.fixed
    assert by_set.seeds == by_hand.seeds and by_set.variants == by_hand.variants
    # the same as a mapping of values, and the file itself is not changed
    as_map = dict(zip([s.split("=", 1)[0] for s in sets],
                      [parse_override(s).value for s in sets]))
    assert load_study(b, "quick", overrides=as_map).keys == by_hand.keys
    assert b.read_text() == base
    # spec.json's record: the overrides as given, each with its key and value
    rec = by_set.to_json()["overrides"]
    assert [r["set"] for r in rec] == sets
    assert [(r["key"], r["value"]) for r in rec] == [(s.split("=", 1)[0].strip(),
                                                      parse_override(s).value) for s in sets]
    assert by_hand.to_json()["overrides"] == []


def test_overrides_by_hand_trials(tmp_path):
    b = _write(tmp_path, "base.toml", BASE_1)
    s = load_study(b, "quick", overrides=SETS_1)
    want = []
    for seed in range(3):
        want += [dict(hidden_size=16, sparsity=sp, method=m, seed=seed, epochs=2)
                 for sp in (0.9, 0.95) for m in ("random", "snip")]
    got = [{k: getattr(c, k) for k in ("hidden_size", "sparsity", "method", "seed", "epochs")}
           for c in s.configs]
    assert got == want
    assert all(c.data == {"sleep": 0.0, "fail": False} for c in s.configs)


@pytest.mark.parametrize("base,sets,edited", CASES)
def test_cli_set_lists_and_runs_the_edited_trials(tmp_path, base, sets, edited, cli):
    b = _write(tmp_path, "base.toml", base)
    e = _write(tmp_path, "edited.toml", edited)
    want = load_study(e, "quick")
    args = [a for s in sets for a in ("--set", s)]
    shown = cli("study", "show", str(b), "--keys", *args)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[lines.index("keys:") + 1:] == [f"  {k}" for k in want.keys]
    assert f"overrides:   {' '.join(sets)}" in lines
    out = tmp_path / "out"
    run = cli("study", str(b), *args, "--out", str(out), "--no-figures", "--allow-trial-code")
    assert run.returncode == 0, run.stderr
    spec = json.loads((out / want.name / "spec.json").read_text())
    assert spec["keys"] == want.keys
    assert spec["grid"] == want.to_json()["grid"] and spec["fixed"] == want.to_json()["fixed"]
    assert spec.get("labels") == want.to_json().get("labels")
    assert [r["set"] for r in spec["overrides"]] == sets
    assert sorted(p.stem for p in (out / want.name / "trials").glob("*.json")) == sorted(
        set(want.keys))


# ----------------------------------------------------------------------------- the errors


TRIAL_FIELDS = list(TrialConfig.input_keys())  # its fields and the flat score keys


def _load_study_error(r) -> str:
    """The one line of a refused study spec: exit 2, stderr only ``error: load_study: ...``."""
    line = r.error_line()
    assert r.stderr.strip().splitlines() == [line], r.stderr
    assert line.startswith("error: load_study: "), line
    return line


def _accepted(line: str) -> list[str]:
    """The keys the message names: between ' among ' and ', got '."""
    return line.split(" among ", 1)[1].split(", got ", 1)[0].split(", ")


@pytest.mark.parametrize("key,accepted,unknown", [
    ("hiden_size=8", ["name", "description", "paper", "grid", "fixed", "presets", "report",
                     "executor"]
     + [f for f in TRIAL_FIELDS if f != "seed"], "hiden_size"),
    ("grid.metod=['snip']", [f for f in TRIAL_FIELDS if f != "seed"], "metod"),
    ("fixed.seed=3", [f for f in TRIAL_FIELDS if f != "seed"], "seed"),
    ("presets.quick.sedes=2", ["seeds", "description", "grid", "threads"]
     + [f for f in TRIAL_FIELDS if f != "seed"], "sedes"),
    ("report.table.metrc=val_loss", ["rows", "cols", "metric", "paper_table", "format"],
     "metrc"),
    ("report.figure=['curves']", ["table", "tables", "figures"], "figure"),
    ("colour=red", None, "colour"),
])
def test_unknown_key_is_one_line_naming_the_accepted_keys(tmp_path, key, accepted, unknown,
                                                         cli):
    b = _write(tmp_path, "base.toml", BASE_1)
    line = _load_study_error(cli("study", "show", str(b), "--set", key))
    assert f"got unknown key {unknown!r}" in line and f"--set {key}" in line
    if accepted is not None:
        assert _accepted(line) == accepted
    with pytest.raises(SpectrumkitError, match=f"unknown key '{unknown}'"):
        load_study(b, "quick", overrides=[key])


def test_unknown_key_hint_and_run_refused_before_anything_is_written(tmp_path, cli):
    b = _write(tmp_path, "base.toml", BASE_1)
    line = _load_study_error(cli("study", str(b), "--set", "hiden_size=8", "--out",
                                str(tmp_path / "out")))
    assert "(did you mean 'hidden_size'?)" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key,words", [
    ("hidden_size=abc", ["hidden_size", "integer", "'abc'", "[fixed]"]),
    ("fixed.epochs='two'", ["epochs", "integer", "'two'", "[fixed]"]),
    ("presets.quick.seeds=-1", ["seeds", "greater than 0", "-1", "[presets.quick]"]),
    ("grid.method=snip", ["a non-empty list for grid axis 'method'", "'snip'"]),
    ("grid.method=['snap']", ["method", "'snap'", "[grid]"]),
    ("report.table.format=3", ["format", "[report]"]),
    ("fixed=3", ["a table for fixed", "3"]),
    ("fixed.epochs.n=3", ["a table at fixed.epochs", "int 1"]),
])
def test_wrong_type_is_one_line(tmp_path, key, words, cli):
    b = _write(tmp_path, "base.toml", BASE_1)
    line = _load_study_error(cli("study", "show", str(b), "--set", key))
    for w in words:
        assert w in line, (w, line)
    assert f"--set {key}" in line
    with pytest.raises(SpectrumkitError):
        load_study(b, "quick", overrides=[key])


def test_run_study_takes_overrides_by_name_only(tmp_path):
    from spectrumkit.study import run_study
    b = _write(tmp_path, "base.toml", BASE_2)
    with pytest.raises(SpectrumkitError, match="run_study: expected overrides with a study name"):
        run_study(load_study(b), overrides=["lr=1"], out=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()
