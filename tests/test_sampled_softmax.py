"""Sampled softmax: against a full softmax and closed forms written here, in float64.

References: the full softmax cross-entropy mean_i (log Σ_k exp z_ik − z_iy) written out below; the
log-uniform law Q(k) = (log(k+2) − log(k+1)) / log(V+1) written with math.log.
"""

from __future__ import annotations

import math

import pytest
import torch

from spectrumkit.data import TokenStream, load_task
from spectrumkit.errors import SpectrumkitError
from spectrumkit.evaluation import evaluate, make_model
from spectrumkit.models import (
    LanguageModel,
    log_uniform_probs,
    log_uniform_sample,
    sampled_softmax_loss,
)
from spectrumkit.study import TrialConfig

D64 = torch.float64


def num(t: torch.Tensor) -> float:
    return t.detach().item()


def problem(M: int, N: int, V: int, seed: int, zipf_bias: bool = False):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(M, N, generator=g, dtype=D64, requires_grad=True)
    w = (0.5 * torch.randn(V, N, generator=g, dtype=D64)).requires_grad_()
    if zipf_bias:  # a language model's bias: frequent (low) ids score higher
        b = torch.tensor([-math.log(k + 1.0) for k in range(V)], dtype=D64, requires_grad=True)
    else:
        b = (0.1 * torch.randn(V, generator=g, dtype=D64)).requires_grad_()
    y = torch.randint(0, V, (M,), generator=g)
    return h, w, b, y


def full_softmax_reference(h, w, b, y):
    z = h @ w.T + b
    return (torch.logsumexp(z, dim=1) - z[torch.arange(len(y)), y]).mean()


def grads(loss, *ts):
    return torch.autograd.grad(loss, ts, retain_graph=True)


def test_whole_vocabulary_without_correction_is_the_full_softmax():
    h, w, b, y = problem(M=12, N=5, V=9, seed=0)
    ref = full_softmax_reference(h, w, b, y)
    for samples in (torch.arange(9), torch.tensor([4, 0, 8, 2, 6, 1, 7, 3, 5])):
        loss = sampled_softmax_loss(h, w, b, y, samples, None)
        assert abs(num(loss) - num(ref)) < 1e-10
        for g1, g2 in zip(grads(loss, h, w, b), grads(ref, h, w, b)):
            assert num((g1 - g2).abs().max()) < 1e-10
    # and the torch module agrees with the reference (the reference is right)
    z = h @ w.T + b
    assert abs(num(torch.nn.functional.cross_entropy(z, y)) - num(ref)) < 1e-12


def test_accidental_hits_are_removed():
    """A candidate equal to the true word is masked: duplicates of y never count as negatives."""
    h, w, b, y = problem(M=1, N=3, V=5, seed=1)
    z = (h @ w.T + b)[0]
    yi = int(y[0])
    others = [k for k in (0, 1, 2) if k != yi]
    samples = torch.tensor([yi, yi] + others)
    want = math.log(math.exp(num(z[yi])) + sum(math.exp(num(z[k])) for k in others)) \
        - num(z[yi])
    assert abs(num(sampled_softmax_loss(h, w, b, y, samples)) - want) < 1e-12


def test_log_q_correction_subtracts_log_expected_count():
    h, w, b, y = problem(M=3, N=4, V=7, seed=2)
    samples = torch.tensor([0, 3, 3, 6])
    c = torch.tensor([0.1 * k - 0.2 for k in range(7)], dtype=D64)
    z = (h @ w.T + b).detach()
    want = 0.0
    for i in range(3):
        yi = int(y[i])
        terms = [num(z[i, yi] - c[yi])] + [num(z[i, s] - c[s]) for s in samples.tolist()
                                              if s != yi]
        want += math.log(sum(math.exp(t) for t in terms)) - terms[0]
    got = sampled_softmax_loss(h, w, b, y, samples, c)
    assert abs(num(got) - want / 3) < 1e-12


@pytest.mark.parametrize("V", [1, 2, 10, 100_000])
def test_log_uniform_probabilities_are_the_closed_form(V):
    q = log_uniform_probs(V)
    want = torch.tensor([(math.log(k + 2) - math.log(k + 1)) / math.log(V + 1) for k in range(V)],
                        dtype=D64)
    assert q.dtype == D64 and num((q - want).abs().max()) < 1e-15
    assert abs(num(q.sum()) - 1.0) < 1e-12


def test_log_uniform_draws_follow_the_closed_form():
    V, n = 20, 2_000_000
    g = torch.Generator().manual_seed(0)
    k = log_uniform_sample(V, n, generator=g)
    assert k.dtype == torch.long and int(k.min()) >= 0 and int(k.max()) < V
    freq = torch.bincount(k, minlength=V).double() / n
    p = torch.tensor([(math.log(j + 2) - math.log(j + 1)) / math.log(V + 1) for j in range(V)],
                     dtype=D64)
    z = (freq - p).abs() / torch.sqrt(p * (1 - p) / n)
    assert num(z.max()) < 5.0, z  # every frequency within 5 standard errors
    again = log_uniform_sample(V, 1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, k[:1000])  # the explicit generator decides everything


@pytest.mark.slow
def test_mean_sampled_gradient_approaches_the_full_gradient_better_with_the_correction():
    """Measured: relative distance of E[∇ sampled loss] (R draws) to ∇ full loss, with and without
    the log(S·Q) correction, candidates drawn log-uniformly (S = 20 of V = 200)."""
    V, S, R = 200, 20, 3000
    h, w, b, y = problem(M=16, N=6, V=V, seed=3, zipf_bias=True)
    y = torch.minimum(y, torch.tensor(40))  # targets among the frequent words, as in text
    full = grads(full_softmax_reference(h, w, b, y), h, w, b)
    log_expected = math.log(S) + torch.log(log_uniform_probs(V))
    g = torch.Generator().manual_seed(7)
    sums = {"corrected": [torch.zeros_like(t) for t in full],
            "uncorrected": [torch.zeros_like(t) for t in full]}
    for _ in range(R):
        samples = log_uniform_sample(V, S, generator=g)
        for name, c in (("corrected", log_expected), ("uncorrected", None)):
            for acc, gr in zip(sums[name], grads(sampled_softmax_loss(h, w, b, y, samples, c),
                                                 h, w, b)):
                acc += gr / R
    flat_full = torch.cat([t.flatten() for t in full])
    err = {name: num(torch.linalg.norm(torch.cat([t.flatten() for t in acc]) - flat_full)
                       / torch.linalg.norm(flat_full)) for name, acc in sums.items()}
    print(f"relative error of the mean sampled gradient ({R} draws of S={S}, V={V}): "
          f"with correction {err['corrected']:.4f}, without {err['uncorrected']:.4f}")
    assert err["corrected"] < 0.5 * err["uncorrected"]


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------


def test_model_refuses_bad_sample_counts():
    for bad in (0, -3, 50, 51, True, 2.5):
        with pytest.raises(SpectrumkitError, match=r"softmax_samples in \[1, V - 1\]"):
            LanguageModel("lstm", 50, 4, 3, seed=0, softmax_samples=bad)
    assert LanguageModel("lstm", 50, 4, 3, seed=0, softmax_samples=49).softmax_samples == 49


def test_train_loss_full_is_the_full_softmax_and_sampled_needs_a_generator():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 30, (3, 6), generator=g)
    batch = (tokens[:, :-1], tokens[:, 1:])
    full = LanguageModel("gru", 30, 4, 5, seed=1, dtype=D64)
    logits, _ = full(batch[0])
    ref = full_softmax_reference(logits.reshape(-1, 30), torch.eye(30, dtype=D64),
                                 torch.zeros(30, dtype=D64), batch[1].reshape(-1))
    assert abs(num(full.train_loss(batch)[0]) - num(ref)) < 1e-12
    sampled = LanguageModel("gru", 30, 4, 5, seed=1, dtype=D64, softmax_samples=29)
    with pytest.raises(SpectrumkitError, match="torch.Generator"):
        sampled.train_loss(batch)
    # the sampled loss is the hidden states' sampled softmax with the log(S·Q) correction
    s = sampled.states(sampled.embed(batch[0]))
    h = sampled.cell.output(s[1:]).transpose(0, 1).reshape(-1, 5)
    cand = log_uniform_sample(30, 29, generator=torch.Generator().manual_seed(4))
    want = sampled_softmax_loss(h, sampled.decoder.weight, sampled.decoder.bias,
                                batch[1].reshape(-1), cand,
                                math.log(29) + torch.log(log_uniform_probs(30)))
    got, _ = sampled.train_loss(batch, generator=torch.Generator().manual_seed(4))
    assert abs(num(got) - num(want)) < 1e-12


def test_evaluation_uses_the_full_softmax_even_for_a_sampled_model():
    task = load_task("1b", sample=True, max_vocab=300, limit=5000, bptt=8)
    model = make_model(task, "lstm", 6, embed_size=4, seed=0, softmax_samples=20,
                       dtype=D64)
    split = TokenStream(task.val.ids[:401], "head of val")
    got = evaluate(model, split, batch_size=4, bptt=8)
    # reference: 4 rows of 100 tokens, windows of 8, state carried, full cross-entropy summed
    rows = split.ids[:400].view(4, 100)
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for s in range(0, 99, 8):
            t = min(8, 99 - s)
            logits, state = model(rows[:, s:s + t], state)
            z = logits.reshape(-1, 300)
            yy = rows[:, s + 1:s + 1 + t].reshape(-1)
            total += num((torch.logsumexp(z, 1) - z[torch.arange(len(yy)), yy]).sum())
            count += len(yy)
    assert abs(got["loss"] - total / count) < 1e-10
    assert abs(got["ppl"] - math.exp(total / count)) < 1e-8


def test_trial_config_steps_budget_and_softmax():
    c = TrialConfig(task="1b", steps=20000, softmax_samples=1000, embed_size=400)
    assert (c.steps, c.epochs, c.softmax_samples, c.embed_size) == (20000, None, 1000, 400)
    assert TrialConfig(task="seq-mnist", steps=5, softmax_samples=10).softmax_samples is None
    with pytest.raises(ValueError, match="exactly one of epochs / steps, got both"):
        TrialConfig(task="1b", steps=10, epochs=1)




@pytest.mark.parametrize("args, message", [
    # the command checks its flags through the trial config first (NOTE [train command]), so a
    # flag the config refuses is named as a flag; V - 1 is the model's own bound
    (["--softmax-samples", "0"], "error: spectrumkit train: expected --softmax-samples greater "
                                 "than 0, got 0"),
    (["--softmax-samples", "300", "--steps", "1"],
     "error: LanguageModel: expected softmax_samples in [1, V - 1]"),
    (["--steps", "2", "--epochs", "1"], "error: spectrumkit train: expected exactly one of epochs / "
                                        "steps, got both"),
])
def test_cli_refuses_bad_softmax_and_budget(tmp_path, args, message, cli):
    r = cli("train", "--data", "1b", "--data-option", "sample=true", "--data-option",
            "max_vocab=300", "--data-option", "limit=3000", "--hidden-size", "4", "--embed-size", "4",
            "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr


def test_cli_study_refuses_steps_with_epochs(tmp_path, cli):
    study = tmp_path / "s.toml"
    study.write_text('[fixed]\ntask = "1b"\nsteps = 10\nepochs = 1\n[presets.quick]\nseeds = 1\n'
                     '[report]\ntable = { rows = "method", metric = "test_ppl" }\n')
    r = cli("study", "run", str(study), "--out", str(tmp_path / "o"), "--no-figures")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "exactly one of epochs / steps" in lines[0], r.stderr


def test_language_study_paper_rows_carry_the_appendix_settings():
    from spectrumkit.study import load_study

    paper = load_study("language", "paper")
    want = {"wikitext": (20000, None, {}), "wikitext-103": (12000, 1000, {}),
            "1b": (30000, 1000, {"max_vocab": 100000})}
    got = {}
    for c in paper.configs:
        assert (c.cell, c.hidden_size, c.embed_size, c.init, c.epochs) == ("lstm", 2000, 400,
                                                                          "he", None)
        got.setdefault(c.task, set()).add((c.steps, c.softmax_samples, tuple(c.data.items()),
                                           c.method, c.seed))
    assert set(got) == set(want) and len(paper.configs) == 3 * 2 * 3
    for task, (steps, samples, data) in want.items():
        assert got[task] == {(steps, samples, tuple(data.items()), m, s)
                             for m in ("jacobian", "random") for s in range(3)}
    quick = load_study("language", "quick")
    assert {(c.task, c.data["sample"], c.steps, c.softmax_samples) for c in quick.configs} == \
        {("1b", True, 150, 200)}


def test_study_variants_refuse_unknown_keys_and_grid_axes(tmp_path):
    from spectrumkit.study import load_study

    base = ('[grid]\nmethod = ["random"]\n[presets.quick]\nseeds = 1\n'
            '[report]\ntable = { rows = "method", metric = "test_ppl" }\n')
    for case, message in (("stepz = 3", "unknown key 'stepz'"),
                          ("method = 'dense'", "'method' set in either an axis or a variant")):
        p = tmp_path / "s.toml"
        p.write_text(base + f"[[presets.quick.grid.kind]]\nlabel = 'a'\nsteps = 1\n{case}\n")
        with pytest.raises(SpectrumkitError, match=message):
            load_study(p, "quick")
