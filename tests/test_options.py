"""The options models of the score methods, and what is derived from them.

References are written out here: the options table as it stood before the models (literally),
the trial function's old way of turning a config into compute_scores options (transcribed), and
scores computed through keyword options.
"""

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from spectrumkit import SpectrumkitError
from spectrumkit.models import SequenceClassifier
from spectrumkit.scores import METHODS, OPTION_MODELS, OPTIONS, compute_scores, options_for
from spectrumkit.study.config import TrialConfig, flat_config, pydantic_message, trial_key

ROOT = Path(__file__).resolve().parents[1]

_GAMMA = {"gamma_inputs": "gaussian", "gamma_state": "zero", "gamma_steps": None,
          "gamma_sequences": None, "gamma_readout": "sum", "gamma_objective": "hidden",
          "gamma_floor": 1e-3, "gamma": None}
#: the options table before the options models, written out (jacobian: the chi-gamma recipe)
OLD_OPTIONS = {
    "jacobian": {"horizon": 4, "estimator": "ones", "through_time": False, "discount": 1.0,
                 "batch_size": 64, "normalize": "gamma", "balance": "none",
                 "gamma_inputs": "gaussian", "gamma_state": "authors", "gamma_steps": 5,
                 "gamma_sequences": 100, "gamma_readout": "last", "gamma_objective": "chi",
                 "gamma_floor": 0.0, "probes": 1, "gamma": None, "recipe": "chi-gamma"},
    "snip": {"normalize": "none", **_GAMMA, "balance": "none"},
    "foresight": {"normalize": "none", **_GAMMA, "balance": "none"},
    "magnitude": {"balance": "none"},
    "random": {"balance": "none"},
    "synflow": {"density": None, "iterations": 100, "balance": "none"},
}


def test_defaults_equal_the_old_table():
    assert METHODS == tuple(OLD_OPTIONS) == tuple(OPTION_MODELS)
    for m, table in OLD_OPTIONS.items():
        assert OPTIONS[m] == table, m
        assert [type(v) for v in OPTIONS[m].values()] == [type(table[k]) for k in OPTIONS[m]], m
        o = options_for(m)  # the object's values are the defaults too
        assert {k: getattr(o, k) for k in table} == table, m


def test_recipe_fills_what_is_not_given():
    a = options_for("jacobian", recipe="authors", estimator="ones", gamma_floor=0.5)
    assert (a.estimator, a.gamma_floor) == ("ones", 0.5)  # given: kept
    assert (a.through_time, a.discount, a.gamma_readout, a.gamma_steps) == (True, 0.9, "last", 5)
    assert a.model_fields_set == {"method", "recipe", "estimator", "gamma_floor"}
    legacy = options_for("jacobian", recipe="legacy")
    assert (legacy.gamma_state, legacy.gamma_steps, legacy.gamma_readout) == ("zero", None, "sum")


def test_draws_random_and_for_batch():
    cases = [("random", {}, "method 'random'"), ("magnitude", {}, None),
             ("jacobian", {"estimator": "hutchinson"}, "estimator 'hutchinson'"),
             ("jacobian", {}, "gamma_inputs='gaussian', gamma_state='authors'"),
             ("jacobian", {"gamma_inputs": "data", "gamma_state": "zero"}, None),
             ("jacobian", {"normalize": "none"}, None), ("snip", {}, None),
             ("snip", {"normalize": "gamma"}, "gamma_inputs='gaussian', gamma_state='zero'")]
    for m, kw, why in cases:
        assert options_for(m, **kw).draws_random() == why, (m, kw)
    o = options_for("jacobian", horizon="all", gamma_inputs="data").for_batch("f", 7, 3)
    assert (o["horizon"], o["gamma_steps"], o["gamma_sequences"]) == (7, 5, 3)  # capped at B
    o = options_for("jacobian", gamma_inputs="data", batch_size=2).for_batch("f", 4, 3)
    assert (o["gamma_steps"], o["gamma_sequences"]) == (4, 2)  # capped at T and batch_size
    with pytest.raises(SpectrumkitError, match=r"^f: expected gamma_sequences <= 3 .*got 4$"):
        options_for("jacobian", gamma_inputs="data", gamma_sequences=4).for_batch("f", 4, 3)
    with pytest.raises(SpectrumkitError, match=r"^f: expected horizon U in 1..T=3 .*got 4$"):
        options_for("jacobian").for_batch("f", 3, 3)
    with pytest.raises(SpectrumkitError, match=r"^f: expected density= for synflow"):
        options_for("synflow").for_batch("f", 3, 3)


def test_options_object_gives_the_keyword_scores():
    m = SequenceClassifier("gru", 3, 4, 3, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(100)
    batch = (torch.randn(3, 5, 3, generator=g, dtype=torch.float64), torch.tensor([0, 2, 1]))
    for method, kw in (("jacobian", {"recipe": "authors", "horizon": "all"}),
                       ("snip", {"normalize": "gamma", "gamma_inputs": "data"}),
                       ("synflow", {"density": 0.3, "iterations": 4}),
                       ("random", {"balance": "gate"})):
        ref_kw = {**kw, "horizon": 5} if kw.get("horizon") == "all" else kw
        ref = compute_scores(method, m, batch, generator=torch.Generator().manual_seed(3),
                             **ref_kw)
        got = compute_scores(method, m, batch, generator=torch.Generator().manual_seed(3),
                             options=options_for(method, **kw))
        assert all(torch.equal(ref[n], got[n]) for n in ref), method
    with pytest.raises(SpectrumkitError, match="^compute_scores: expected either options= or "
                       "keyword options, got options= and balance$"):
        compute_scores("random", m, batch, options=options_for("random"), balance="gate")
    with pytest.raises(SpectrumkitError, match="^compute_scores: expected options= a "
                       "SnipOptions for method 'snip'.*got RandomOptions$"):
        compute_scores("snip", m, batch, options=options_for("random"))


@pytest.mark.parametrize("method,kw,message", [
    ("jacobian", {"horizn": 4}, "options of method 'jacobian' among horizon, estimator, "
                                "through_time, discount, batch_size, probes, recipe, normalize"),
    ("jacobian", {"horizon": True}, "horizon to be a positive integer, got True"),
    ("jacobian", {"horizon": "every"}, "horizon to be a positive integer, got 'every'"),
    ("jacobian", {"batch_size": 0}, "batch_size to be a positive integer, got 0"),
    ("jacobian", {"discount": 1.5}, r"discount in \(0, 1\], got 1.5"),
    ("jacobian", {"recipe": "paper", "normalize": "none", "gamma_state": "zero"},
     "gamma options only together with normalize='gamma', got gamma_state"),
    ("synflow", {"density": 0.0}, r"density in \(0, 1\], got 0.0"),
    ("synflow", {"iterations": 2.0}, "iterations to be a positive integer, got 2.0"),
    ("magnitude", {"normalize": "gamma"}, "options of method 'magnitude' among balance, got "
                                          "normalize"),
    ("sparse", {}, "method to be one of 'jacobian'"),
])
def test_options_for_bad_input_one_line(method, kw, message):
    with pytest.raises(SpectrumkitError) as e:
        options_for(method, **kw)
    assert str(e.value).startswith("compute_scores: expected ")
    assert re.search(message, str(e.value)) and "\n" not in str(e.value), str(e.value)


# --------------------------------------------------------------------- the study's TrialConfig


def _old_score_options(c, T):
    """The trial function's options before ``score_kwargs``, transcribed."""
    o = {}
    if c.method == "jacobian":
        o.update(recipe=c.recipe, horizon=T if c.horizon == "all" else min(int(c.horizon), T),
                 estimator=c.estimator, through_time=c.through_time)
    if c.normalize is not None:
        o["normalize"] = c.normalize
    if c.method == "synflow":
        o["density"] = c.density
    o.update(c.score_options)
    return o


def test_config_is_canonical():
    grid = {trial_key(TrialConfig(epochs=1, method=m, normalize=n, horizon=8, recipe=r))
            for m in ("random", "magnitude") for n in ("gamma", "none", None)
            for r in ("authors", None)}
    assert len(grid) == 2  # method x normalize x recipe: one random, one magnitude trial
    base = TrialConfig(epochs=1, method="snip")
    for same in ({"normalize": "none"}, {"score_options": {"balance": "none"}},
                 {"score_options": {"discount": 0.9, "horizon": 3}}):  # jacobian-only: dropped
        assert trial_key(TrialConfig(epochs=1, method="snip", **same)) == trial_key(base), same
    # a jacobian option given with its recipe's value is the same trial as leaving it out
    a = TrialConfig(epochs=1, recipe="authors")
    assert trial_key(TrialConfig(epochs=1, recipe="authors", estimator="transpose",
                                 score_options={"discount": 0.9})) == trial_key(a)
    assert trial_key(TrialConfig(epochs=1, recipe="authors", estimator="ones")) != trial_key(a)
    # every option written out, with the recipe's values; a dump validates to the same trial
    d = a.model_dump(mode="json")
    assert d["score"] == {"method": "jacobian",
                          **{k: v for k, v in OLD_OPTIONS["jacobian"].items() if k != "gamma"},
                          "horizon": 4, "estimator": "transpose", "through_time": True,
                          "discount": 0.9, "gamma_inputs": "gaussian", "gamma_state": "authors",
                          "gamma_steps": 5, "gamma_sequences": 100, "gamma_readout": "last",
                          "gamma_objective": "chi", "gamma_floor": 0.0, "recipe": "authors"}
    back = TrialConfig(**d)
    assert back == a and trial_key(back) == trial_key(a)
    assert TrialConfig(epochs=1, method="l2", l2_stage_steps=3).model_dump()["score"] == {
        "method": "l2", "stage_steps": 3}


def test_config_flat_view_and_scoring_options():
    cases = [dict(method="jacobian", horizon="all", normalize="none", estimator="transpose"),
             dict(method="jacobian", recipe="legacy", horizon=9),
             dict(method="jacobian", estimator="hutchinson", score_options={"probes": 2}),
             dict(method="snip", normalize="gamma", score_options={"gamma_inputs": "data"}),
             dict(method="foresight", score_options={"balance": "gate"}),
             dict(method="synflow", sparsity=0.8, score_options={"iterations": 5}),
             dict(method="random"), dict(method="dense"), dict(method="l2", l2_stage_steps=2)]
    for kw in cases:
        c = TrialConfig(epochs=1, **kw)
        T = 10  # a horizon above T is refused (one rule: the options object's)
        old = _old_score_options(c, T)
        scoring = c.scoring()
        given = {} if scoring is None else scoring.for_batch("f", T, 8)
        assert {k: given[k] for k in old} == old and (scoring is None) == (c.method in ("dense", "l2")), kw
        flat = flat_config(c.model_dump(mode="json"))
        for k, v in kw.items():
            if k != "sparsity":
                assert flat[k] == v or (k == "horizon" and v == 9 and flat[k] == 9), (kw, k)
        assert TrialConfig(**{k: v for k, v in flat.items()}) == c, kw
    c = TrialConfig(epochs=1, method="synflow", sparsity=0.8)
    assert math.isclose(c.scoring().density, 0.2) and c.score.density is None


@pytest.mark.parametrize("kw,message", [
    ({"score_options": {"horizn": 3}}, "expected score_options to be score options among "
                                       "balance, .*got horizn"),
    ({"horizon": 0}, "expected horizon to be a positive integer, got 0"),
    ({"recipe": "nope"}, "expected recipe to be one of legacy, paper, authors, chi-gamma, got "
                         "'nope'"),
    ({"method": "snip", "score_options": {"balance": "row"}},
     "expected score_options.balance to be one of 'none', 'gate', 'block', got 'row'"),
    ({"method": "sparse"}, "expected method 'jacobian', 'snip', .*, 'l2', got 'sparse'"),
    ({"method": "synflow", "score_options": {"density": 0.5}}, "no density or gamma among"),
    ({"method": "l2"}, "expected l2_stage_steps and some training for method 'l2'"),
    ({"method": "snip", "score": {"method": "snip"}}, "either score= or the flat keys"),
])
def test_config_bad_input_one_line(kw, message):
    with pytest.raises(ValidationError) as e:
        TrialConfig(epochs=1, **kw)
    line = pydantic_message("load_study", e.value)
    assert line.startswith("load_study: expected ") and "\n" not in line
    assert re.search(message, line), line


def test_cli_bad_option_one_line(cli):
    tiny = ["prune", "--hidden-size", "4", "--input-size", "2", "--seq-len", "5", "--score-batch", "4"]
    for args, message in ((["--horizon", "x"], "'x' is not a valid integer or 'all'"),
                          (["--balance", "row"], "compute_scores: expected --balance to be one of "
                                                 "'none', 'gate', 'block', got 'row'"),
                          (["--method", "snip", "--hutchinson-probes", "2"],
                           "prune: expected score options that apply to snip, got "
                           "--hutchinson-probes")):
        r = cli(*tiny, *args)
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)
    r = cli(*tiny, "--horizon", "all", "--no-through-time")
    assert r.exit_code == 0, r.output


# --------------------------------------------------------------------- option propagation

_PROBE = r"""
import json, sys
from click.testing import CliRunner
from spectrumkit.cli import main
from spectrumkit.study.config import TrialConfig, trial_key
help = CliRunner().invoke(main, ["prune", "--help"], terminal_width=200).output
schema = TrialConfig.model_json_schema()
def key(**kw):
    try:
        return trial_key(TrialConfig(epochs=1, **kw))
    except ValueError as e:
        return "error: " + str(e)
keys = {str(v): key(score_options={} if v is None else {"my_option": v}) for v in (None, 3, 4, 5)}
rnd = {key(method="random", score_options=so) for so in ({}, {"my_option": 4})}
json.dump({"help": help, "schema": schema, "keys": keys, "random": sorted(rnd)}, sys.stdout)
"""


def _probe(src: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", _PROBE], cwd=src, capture_output=True, text=True,
                       env={"PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin"},
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_one_new_option_reaches_the_cli_the_schema_and_the_key(tmp_path):
    """One edit, a field added to JacobianOptions, reaches the prune flags,
    TrialConfig's schema and the trial key, and nothing else is edited."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "spectrumkit", src / "spectrumkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    path = src / "spectrumkit" / "scores" / "options.py"
    text = path.read_text(encoding="utf-8")
    anchor = '    method: Literal["jacobian"] = "jacobian"\n'
    assert text.count(anchor) == 1
    path.write_text(text.replace(anchor, anchor + '    my_option: int = Field(3, description='
                                 '"an option added by the test")\n'), encoding="utf-8")
    before, after = _probe(ROOT), _probe(src)
    # (a) the CLI help
    assert "--my-option" not in before["help"]
    flag = re.search(r"--my-option INTEGER\s+(.*?)\n\s*--", after["help"], re.S)
    assert flag and " ".join(flag.group(1).split()) == (
        "jacobian: an option added by the test (default: the method's)"), after["help"]
    # (b) the schema
    props = after["schema"]["$defs"]["JacobianOptions"]["properties"]
    assert props["my_option"] == {"default": 3, "description": "an option added by the test",
                                  "title": "My Option", "type": "integer"}
    assert "my_option" not in before["schema"]["$defs"]["JacobianOptions"]["properties"]
    # (c) the key: the default is the same trial as leaving it out; other values are not
    k = after["keys"]
    assert k["None"] == k["3"] and len({k["None"], k["4"], k["5"]}) == 3
    assert k["None"] != before["keys"]["None"]  # every jacobian trial now writes the option out
    assert len(after["random"]) == 1 and not after["random"][0].startswith("error")  # dropped
    # before the edit no method knows the option: an error naming it
    assert "got my_option" in before["keys"]["4"] and before["keys"]["4"].startswith("error")
