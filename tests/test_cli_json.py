"""``--json`` (NOTE [JSON output] in cli/cmd_prune.py): stdout is one JSON document and nothing
else, and its numbers are the library's."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from spectrumkit.anatomy import anatomy_summary, mask_anatomy
from spectrumkit.cells import available, count_params, get
from spectrumkit.init import init_params
from spectrumkit.masks import load_masks
from spectrumkit.spectra import spectrum
from spectrumkit.study.spec import list_studies, load_study

F64 = torch.float64


def test_cells_json_holds_the_weight_counts(cli):
    doc = json.loads(cli("cells", "--input-size", "3", "--hidden-size", "5", "--json").ok().stdout)
    assert (doc["input_size"], doc["hidden_size"]) == (3, 5)
    assert [c["cell"] for c in doc["cells"]] == list(available())
    for c in doc["cells"]:
        assert c["gates"] == list(get(c["cell"]).gates)
        assert c["weights"] == count_params(c["cell"], 3, 5)
        assert c["with_bias"] == count_params(c["cell"], 3, 5, include_bias=True)
    # the GRU in closed form: 3 gates × N × (D + N) weights, 2 × 3N biases (PyTorch's layout)
    gru = next(c for c in doc["cells"] if c["cell"] == "gru")
    assert (gru["weights"], gru["with_bias"]) == (3 * 5 * (3 + 5), 3 * 5 * 8 + 2 * 3 * 5)


def test_prune_json_is_the_anatomy_of_the_mask_it_wrote(tmp_path, cli):
    """Two methods at 99 % sparsity of a 6-unit GRU: K = round(0.01 · 612) = 6 weights kept;
    the anatomy and summary equal the library's on the written masks (an I/R ratio of inf is
    null)."""
    out = tmp_path / "m.pt"
    r = cli("prune", "--hidden-size", "6", "--seq-len", "4", "--score-batch", "4", "--compare",
            "jacobian,random", "--sparsity", "0.99", "--dtype", "float64", "--json",
            "--out", out).ok()
    doc = json.loads(r.stdout)
    masks, config = load_masks(out)
    assert doc["config"] == config and doc["out"] == str(out)
    assert doc["config"]["dtype"] == "float64" and doc["config"]["seq_len"] == 4
    assert list(doc["methods"]) == ["jacobian", "random"] == list(masks)
    for m, got in doc["methods"].items():
        n = sum(t.numel() for t in masks[m].values())
        assert got["total"] == n == 3 * 6 * (28 + 6)
        assert got["kept"] == round(0.01 * n) == 6 == sum(int(t.sum()) for t in masks[m].values())
        assert got["anatomy"] == mask_anatomy("gru", masks[m], 28, 6).to_dict(orient="records")
        want = anatomy_summary("gru", masks[m], 28, 6)
        assert set(got["summary"]) == set(want)
        for k, v in want.items():
            assert got["summary"][k] == (v if math.isfinite(v) else None), k


def test_spectrum_json_is_what_the_library_computes(tmp_path, cli):
    """The same draws as NOTE [CLI data]: params from --seed, x ~ N(0, 1) (B, T, D) from
    --seed + 1 drawn in float32 and cast, then time-major."""
    r = cli("spectrum", "--cell", "lstm", "--input-size", "3", "--hidden-size", "4", "--init",
            "normal:0.5", "--spectrum-batch", "5", "--seq-len", "6", "--jacobian-steps", "last:3",
            "--seed", "7", "--dtype", "float64", "--bins", "6", "--device", "cpu", "--json",
            "--out", tmp_path / "out").ok()
    doc = json.loads(r.stdout)
    p = init_params("lstm", 3, 4, "normal:0.5", seed=7, dtype=F64)
    xs = torch.randn(5, 6, 3, generator=torch.Generator().manual_seed(8)).to(F64).transpose(0, 1)
    want = spectrum("lstm", p, xs, steps=3, bins=6)
    assert [s["step"] for s in doc["steps"]] == list(want.table.index) == [4, 5, 6]
    cols = list(want.table.columns)
    got = np.array([[s[c] for c in cols] for s in doc["steps"]])
    np.testing.assert_allclose(got, want.table.to_numpy(), rtol=1e-15, atol=0)
    assert doc["pooled"] == {k: float(v) for k, v in want.pooled.items()}
    assert doc["histogram"]["counts"] == want.histogram.counts.tolist()
    np.testing.assert_allclose(doc["histogram"]["edges"], want.histogram.edges, rtol=1e-15)
    assert doc["lanczos"] is None and doc["config"]["spectrum_batch"] == 5
    assert sorted(doc["wrote"]) == sorted(str(tmp_path / "out" / f) for f in (
        "spectrum.csv", "histogram.csv", "histogram.pdf", "histogram.png"))


def test_spectrum_json_reports_lanczos_convergence(tmp_path, cli):
    """Lanczos with m = S steps on a 3-unit GRU: every top value converges, and the counts are
    the SLQ estimates (floats) summing to U · B · S = 2 · 2 · 3."""
    r = cli("spectrum", "--cell", "gru", "--input-size", "2", "--hidden-size", "3", "--spectrum-batch",
            "2", "--seq-len", "4", "--jacobian-steps", "last:2", "--dtype", "float64", "--method",
            "lanczos", "--lanczos-iterations", "3", "--lanczos-probes", "3", "--lanczos-top-k",
            "1", "--json", "--out", tmp_path / "l").ok()
    doc = json.loads(r.stdout)
    lz = doc["lanczos"]
    assert (lz["top_k"], lz["iterations"], lz["probes"]) == (1, 3, 3)
    assert lz["top_converged"] == lz["count"] == 2 * 2
    assert sum(doc["histogram"]["counts"]) == __import__("pytest").approx(2 * 2 * 3)


def test_study_list_json_counts_the_trials_of_each_preset(cli):
    doc = json.loads(cli("study", "list", "--json").ok().stdout)
    assert [s["name"] for s in doc] == list_studies()
    for s in doc:
        quick, paper = load_study(s["name"], "quick"), load_study(s["name"], "paper")
        assert (s["quick"], s["paper"]) == (len(quick.configs), len(paper.configs)), s["name"]
        assert s["reference"] == quick.paper
        assert s["description"] == " ".join(quick.description.split())


def test_study_show_json_is_the_resolved_spec(cli):
    """What spec.json would hold for the study as resolved (overrides included), with the
    presets of the file and the number of trials."""
    args = ("--preset", "quick", "--set", "hidden_size=16", "--set", "presets.quick.seeds=1")
    doc = json.loads(cli("study", "show", "init-ablation", *args, "--json").ok().stdout)
    s = load_study("init-ablation", "quick", overrides=("hidden_size=16",
                                                        "presets.quick.seeds=1"))
    assert doc == json.loads(json.dumps({**s.to_json(), "presets": list(s.presets),
                                         "trials": len(s.configs)}))
    assert doc["seeds"] == 1 and {c.hidden_size for c in s.configs} == {16}
    assert len(doc["keys"]) == doc["trials"] == len(s.configs)
