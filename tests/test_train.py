"""Training: masks held exactly, determinism, divergence, checkpoints, evaluation, L2, bad input.

References: an independent reparameterized training loop (W = W_free ⊙ M) for masked Adam,
torch.nn.GRU for the regressor, one unbroken forward pass for carried-state evaluation, numpy's
stable argsort for exact-K magnitude masks, and the unigram perplexity for the language model.
"""

import copy
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from spectrumkit import SpectrumkitError
from spectrumkit.config import TrainingConfig
from spectrumkit.data import SequenceDataset, TokenStream, load_task
from spectrumkit.interop import to_torch
from spectrumkit.models import SequenceRegressor
from spectrumkit.masks import load_masks, topk_mask
from spectrumkit._mask_hold import magnitude_mask as _magnitude_mask
from spectrumkit.training import (L2_DENSITIES, MaskHolder, SequenceBatches, StreamBatches,
                                  TrainState, evaluate, make_model, resolve_device, train,
                                  train_l2_iterative)

F64 = torch.float64


@pytest.fixture(scope="module")
def mnist():
    return load_task("seq-mnist", limit=128, val_limit=32)


def random_mask(model, density, seed, include_bias=False):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(p.shape, generator=g) < density
            for k, p in model.prunable(include_bias=include_bias).items()}


def no_seconds(df):
    return df.drop(columns="seconds")


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ----------------------------------------------------------------------------- holding masks


def test_masked_adam_equals_reparameterized_reference(mnist):
    """train(mask=M) gives the weights of Adam on W_free with W = W_free ⊙ M (an independent loop)."""
    model = make_model(mnist, "gru", 6, init="torch", seed=0, dtype=F64)
    ref = copy.deepcopy(model)
    mask = random_mask(model, 0.3, seed=1)
    train(model, mnist, training=TrainingConfig(steps=6, batch_size=32, lr=1e-2, eval_every=100), mask=mask, seed=3, device="cpu")

    free = {k: nn.Parameter(ref.rnn[k].detach().clone()) for k in mask}
    others = [p for n, p in ref.named_parameters() if n.removeprefix("rnn.") not in mask]
    opt = torch.optim.Adam([*free.values(), *others], lr=1e-2)
    g = torch.Generator().manual_seed(3)
    xs, ys = mnist.train.xs.to(F64), mnist.train.ys
    step = 0
    while step < 6:
        perm = torch.randperm(len(ys), generator=g)
        for i in range(0, len(ys), 32):
            if step == 6:
                break
            idx = perm[i:i + 32]
            weights = {f"rnn.{k}": free[k] * mask[k] for k in mask}
            loss = F.cross_entropy(functional_call(ref, weights, (xs[idx],)), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    for k, m in mask.items():
        torch.testing.assert_close(model.rnn[k].detach(), (free[k] * m).detach(), atol=1e-12,
                                   rtol=0)
    torch.testing.assert_close(model.head.weight, ref.head.weight, atol=1e-12, rtol=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pruned_entries_stay_exactly_zero(mnist, optimizer):
    model = make_model(mnist, "lstm", 8, init="glorot", bias="normal:0.1", seed=0)
    mask = random_mask(model, 0.05, seed=2, include_bias=True)
    before = {k: p.detach().clone() for k, p in model.prunable(include_bias=True).items()}
    zeros_seen = []

    def check(info):
        zeros_seen.append(all(bool((model.rnn[k].detach()[~m] == 0).all())
                              for k, m in mask.items()))

    r = train(model, mnist, training=TrainingConfig(steps=12, batch_size=32, lr=0.05, optimizer=optimizer), mask=mask,
              seed=0, device="cpu", callback=check)
    assert r.status == "ok" and all(zeros_seen) and len(zeros_seen) == 12
    for k, m in mask.items():
        p = model.rnn[k].detach()
        assert (p[~m] == 0).all() and not torch.signbit(p[~m]).any(), k  # +0.0, never -0.0
        # kept entries did train (some stay put: columns of units whose inputs are all pruned)
        assert (p[m] != before[k][m]).float().mean() > 0.5, k
    kept = sum(int(m.sum()) for m in mask.values()) / sum(m.numel() for m in mask.values())
    assert r.history["density"].eq(kept).all() and r.metrics["density"] == kept


# ----------------------------------------------------------------------- determinism, divergence


def test_same_seed_same_history(mnist):
    def run(seed):
        model = make_model(mnist, "gru", 8, seed=0)
        r = train(model, mnist, training=TrainingConfig(steps=10, batch_size=32, eval_every=3), seed=seed, device="cpu")
        return r, model

    (r1, m1), (r2, m2), (r3, _) = run(5), run(5), run(6)
    pd.testing.assert_frame_equal(no_seconds(r1.history), no_seconds(r2.history))
    assert list(r1.history["step"]) == [3, 6, 9, 10]
    assert_same_weights(m1, m2)
    assert not r1.history["train_loss"].equals(r3.history["train_loss"])


def test_lr_10_diverges_without_raising(mnist):
    model = make_model(mnist, "gru", 16, init="torch", seed=0)
    r = train(model, mnist, training=TrainingConfig(steps=40, lr=10, batch_size=32), seed=0, device="cpu")
    assert r.status == "diverged" and 1 < r.diverged_at <= 40
    assert r.history["step"].iloc[-1] == r.diverged_at
    assert set(r.metrics) == {"steps", "epochs", "train_seconds"}


def test_non_finite_loss_diverges(mnist):
    model = make_model(mnist, "rnn_relu", 16, seed=0)
    r = train(model, mnist, training=TrainingConfig(steps=20, lr=1e30, optimizer="sgd", batch_size=32), seed=0,
              device="cpu", diverge_factor=None)
    assert r.status == "diverged"
    assert not math.isfinite(r.history["train_loss"].iloc[-1])


# -------------------------------------------------------------------------------- checkpoints


class Crash(Exception):
    pass


def tiny_wikitext(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    for name in ("train", "valid", "test"):
        lines = [" ".join(rng.choice(words, size=12)) for _ in range(40 if name == "train" else 8)]
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return load_task("wikitext", root=tmp_path, bptt=6)


@pytest.mark.parametrize("task_name", ["seq-mnist", "wikitext", "copy"])
def test_resume_equals_uninterrupted(mnist, tmp_path, task_name):
    task = {"seq-mnist": lambda: mnist, "wikitext": lambda: tiny_wikitext(tmp_path),
            "copy": lambda: load_task("copy", T=3, delay=3, n_train=100, n_val=20, n_test=20)
            }[task_name]()

    def fresh():
        return make_model(task, "gru", 6, seed=0)

    masks = random_mask(fresh(), 0.5, seed=0)
    kw = dict(mask=masks, training=TrainingConfig(steps=11, batch_size=16, eval_every=3), seed=1,
              device="cpu")
    full = fresh()
    r_full = train(full, task, **kw)

    def boom(info):
        if info["step"] == 5:
            raise Crash

    ckdir = tmp_path / "ck"
    with pytest.raises(Crash):
        train(fresh(), task, checkpoint_dir=ckdir, callback=boom, **kw)
    ck = torch.load(ckdir / "checkpoint.pt", weights_only=True)
    assert ck["state"]["step"] == 3  # the crash lost steps 4-5; resume starts mid-epoch
    resumed = fresh()
    r = train(resumed, task, checkpoint_dir=ckdir, **kw)
    assert_same_weights(full, resumed)
    pd.testing.assert_frame_equal(no_seconds(r.history), no_seconds(r_full.history))
    assert {k: v for k, v in r.metrics.items() if k != "train_seconds"} == \
        {k: v for k, v in r_full.metrics.items() if k != "train_seconds"}
    assert sorted(p.name for p in ckdir.iterdir()) == ["checkpoint.pt"]  # no temp files

    def never(info):
        raise AssertionError("a finished run must not train again")

    again = fresh()
    r2 = train(again, task, checkpoint_dir=ckdir, callback=never, **kw)
    assert_same_weights(full, again) and r2.metrics == r.metrics
    with pytest.raises(SpectrumkitError, match=r"train: expected a checkpoint .* differs in lr"):
        train(fresh(), task, checkpoint_dir=ckdir,
              **{**kw, "training": TrainingConfig(steps=11, batch_size=16, eval_every=3, lr=2e-3)})


# --------------------------------------------------------------------------------- evaluation


def test_evaluate_classifier_and_regressor(mnist):
    model = make_model(mnist, "gru", 5, seed=1, dtype=F64)
    out = evaluate(model, mnist.val, batch_size=7)
    with torch.no_grad():
        logits = model(mnist.val.xs.to(F64))
    assert out["error_pct"] == 100.0 * float((logits.argmax(-1) != mnist.val.ys).double().mean())
    assert out["loss"] == pytest.approx(float(F.cross_entropy(logits, mnist.val.ys)), abs=1e-12)
    add = load_task("adding", T=7, n_train=10, n_val=9, n_test=3)
    reg = make_model(add, "gru", 4, seed=0, dtype=F64)
    with torch.no_grad():
        pred = reg(add.val.xs.to(F64))
    assert evaluate(reg, add.val, batch_size=4)["mse"] == pytest.approx(
        float(((pred - add.val.ys.to(F64)) ** 2).mean()), abs=1e-12)


def test_evaluate_stream_carries_state(tmp_path):
    """One row read in windows of 7 with the state carried == one unbroken forward pass."""
    task = tiny_wikitext(tmp_path)
    model = make_model(task, "lstm", 6, seed=0, dtype=F64)
    ids = task.val.ids
    out = evaluate(model, task.val, batch_size=1, bptt=7)
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
    expected = float(F.cross_entropy(logits[0], ids[1:]))
    assert out["loss"] == pytest.approx(expected, abs=1e-12)
    assert out["ppl"] == pytest.approx(math.exp(expected), rel=1e-12)
    assert out["tokens"] == len(ids) - 1


def test_regressor_matches_torch_gru():
    reg = SequenceRegressor("gru", 3, 4, seed=0, bias="normal:0.1", dtype=F64)
    gru = to_torch("gru", reg.cell_params(), batch_first=True)
    xs = torch.randn(5, 6, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    _, h = gru(xs)
    expected = h[0] @ reg.head.weight[0] + reg.head.bias[0]
    torch.testing.assert_close(reg(xs), expected, atol=1e-12, rtol=0)
    with pytest.raises(SpectrumkitError, match=r"expected floating-point ys of shape \(5,\)"):
        reg.check_batch("f", (xs, torch.zeros(5, dtype=torch.long)))


@pytest.mark.slow
def test_language_model_beats_unigram():
    """A 128-unit LSTM, one epoch on (a prefix of) the bundled WikiText, beats the unigram model
    fitted on the evaluated test tokens themselves (the strongest unigram baseline)."""
    task = load_task("wikitext", max_vocab=1000, limit=60000)
    test = TokenStream(task.test.ids[:20000], "first 20000 test tokens")
    task = dataclasses.replace(task, test=test)
    counts = torch.bincount(test.ids[1:], minlength=task.vocab_size).double()
    unigram = math.exp(-(counts / counts.sum())[test.ids[1:]].log().mean().item())
    model = make_model(task, "lstm", 128, seed=0)
    emb = model.embedding.weight.detach().clone()
    r = train(model, task, training=TrainingConfig(epochs=1, batch_size=10, lr=1e-2), seed=0, device="cpu")
    assert r.status == "ok" and r.metrics["test_ppl"] < unigram, (r.metrics, unigram)
    assert torch.equal(model.embedding.weight, emb)  # frozen embedding


@pytest.mark.slow
def test_adding_problem_beats_baseline():
    task = load_task("adding", T=50, n_train=2000, n_val=500, n_test=10)
    model = make_model(task, "gru", 32, init="torch", seed=0)
    r = train(model, task, training=TrainingConfig(epochs=6, batch_size=32, lr=1e-2), seed=0, device="cpu")
    assert r.metrics["val_mse"] < 0.05, r.history


# --------------------------------------------------------------------------------- L2 baseline


def test_magnitude_mask_matches_stable_argsort():
    g = torch.Generator().manual_seed(0)
    params = {"a": torch.randint(-3, 4, (5, 4), generator=g).double(),
              "b": torch.randint(-3, 4, (6,), generator=g).double()}  # many ties
    flat = np.abs(np.concatenate([params["a"].numpy().ravel(), params["b"].numpy().ravel()]))
    for density in (0.8, 0.31, 0.05):
        K = round(density * flat.size)
        keep = np.zeros(flat.size, bool)
        keep[np.argsort(-flat, kind="stable")[:K]] = True
        m = _magnitude_mask(params, None, density)
        got = np.concatenate([m["a"].numpy().ravel(), m["b"].numpy().ravel()])
        np.testing.assert_array_equal(got, keep)


def test_magnitude_mask_k_rounds_halves_up_and_ranks_pruned_entries_last():
    """K = floor(d·P + 1/2) (NOTE [Exact-K ranking], the rule of topk_mask): at an exact half K
    rounds up where Python's round (half to even) rounds down; entries an old mask prunes rank
    below every kept one. Reference: numpy's stable argsort."""
    g = torch.Generator().manual_seed(1)
    params = {"a": torch.randint(-3, 4, (5, 4), generator=g).double(),
              "b": torch.randint(-3, 4, (6,), generator=g).double()}  # P = 26, many ties
    flat = np.abs(np.concatenate([params["a"].numpy().ravel(), params["b"].numpy().ravel()]))
    kept_before = np.ones(26, bool)
    kept_before[::3] = False  # 9 pruned, 17 kept
    old = {"a": torch.from_numpy(kept_before[:20].reshape(5, 4).copy()),
           "b": torch.from_numpy(kept_before[20:].copy())}

    def reference(scores, K):
        keep = np.zeros(scores.size, bool)
        keep[np.argsort(-scores, kind="stable")[:K]] = True
        return keep

    def flat_mask(m):
        return np.concatenate([m["a"].numpy().ravel(), m["b"].numpy().ravel()])

    assert round(0.25 * 26) == 6  # half to even rounds 6.5 down; the ranking rule keeps 7
    for density, K in ((0.25, 7), (0.75, 20)):  # 6.5 -> 7 and 19.5 -> 20
        got = _magnitude_mask(params, None, density)
        np.testing.assert_array_equal(flat_mask(got), reference(flat, K))
        same = topk_mask({k: v.abs() for k, v in params.items()}, density)  # names sorted a, b
        np.testing.assert_array_equal(flat_mask(got), flat_mask(same))
    got = _magnitude_mask(params, old, 0.25)
    want = reference(np.where(kept_before, flat, -1.0), 7)
    np.testing.assert_array_equal(flat_mask(got), want)
    assert not (flat_mask(got) & ~kept_before).any()  # nested in the old mask


def test_mask_holder_zeroes_parameters_and_optimizer_state_at_pruned_entries():
    """NOTE [Holding a mask]: hold() zeroes the pruned parameters and Adam's moments there,
    leaves the kept entries and the step count alone; mask_grads/mask_params zero the rest."""
    w = nn.Parameter(torch.arange(1.0, 7.0, dtype=F64).view(2, 3))
    opt = torch.optim.Adam([w], lr=0.1)
    w.grad = torch.full_like(w, 2.0)
    opt.step()
    holder = MaskHolder({"w": w}, opt)
    assert holder.density() == 1.0 and holder.mask is None
    keep = torch.tensor([[True, False, True], [False, True, True]])
    w_before = w.detach().clone()
    state_before = {k: v.clone() for k, v in opt.state[w].items()}
    holder.hold({"w": keep})
    assert torch.equal(w.detach(), torch.where(keep, w_before, torch.zeros((), dtype=F64)))
    for k in ("exp_avg", "exp_avg_sq"):
        want = torch.where(keep, state_before[k], torch.zeros((), dtype=F64))
        assert torch.equal(opt.state[w][k], want), k
    assert torch.equal(opt.state[w]["step"], state_before["step"])
    assert holder.density() == 4 / 6
    w.grad = torch.full_like(w, 3.0)
    holder.mask_grads()
    assert torch.equal(w.grad, 3.0 * keep.double())
    with torch.no_grad():
        w.add_(1.0)
    holder.mask_params()
    assert torch.equal(w.detach(), torch.where(keep, w_before + 1.0, torch.zeros((), dtype=F64)))


def test_train_state_checkpoint_format():
    """The checkpoint's "state" keeps its twelve keys (version 2): the carried hidden state under
    "state"; a round trip restores every field; a missing or unknown key is refused."""
    st = TrainState(step=5, pos=2, order=torch.tensor([2, 0, 1]), carry=torch.ones(2, 3),
                    rows=[{"step": 4, "train_loss": 1.0}], loss_sum=1.5, loss_count=2,
                    seconds=3.0, first_loss=2.25, status="ok", diverged_at=None, metrics=None)
    saved = st.to_checkpoint()
    assert sorted(saved) == sorted(["step", "pos", "order", "state", "rows", "loss_sum",
                                    "loss_count", "seconds", "first_loss", "status",
                                    "diverged_at", "metrics"])
    assert saved["state"] is st.carry and saved["seconds"] >= 3.0
    back = TrainState.from_checkpoint(saved, torch.device("cpu"))
    for f in dataclasses.fields(TrainState):
        if f.name in ("order", "carry"):
            assert torch.equal(getattr(back, f.name), getattr(st, f.name)), f.name
        elif f.name not in ("seconds", "started"):
            assert getattr(back, f.name) == getattr(st, f.name), f.name
    assert back.seconds == saved["seconds"]
    for bad in ({**saved, "extra": 1}, {k: v for k, v in saved.items() if k != "pos"}):
        with pytest.raises(KeyError):
            TrainState.from_checkpoint(bad, torch.device("cpu"))


def test_batches_per_kind():
    """Sequences: batch pos of a seeded permutation; a token stream: window pos of 3 rows of 7
    (tokens 21, 22 dropped), the last window short, the state reset at every epoch."""
    xs, ys = torch.arange(10.0).view(10, 1, 1), torch.arange(10)
    seq = SequenceBatches(SequenceDataset(xs, ys, "ten"), 4, torch.device("cpu"))
    assert seq.per_epoch == 3
    st, g = TrainState(), torch.Generator().manual_seed(5)
    seq.start_epoch(st, g)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(5))
    st.pos = 2
    bx, by = seq.next_batch(st)
    assert by.tolist() == order[8:].tolist() and bx.flatten().tolist() == order[8:].tolist()
    stream = StreamBatches(TokenStream(torch.arange(23), "23"), 3, 4)
    assert stream.per_epoch == 2
    st = TrainState(pos=1, carry=torch.ones(3, 2))
    x, y = stream.next_batch(st)
    assert x.tolist() == [[4, 5], [11, 12], [18, 19]] and y.tolist() == [[5, 6], [12, 13], [19, 20]]
    stream.start_epoch(st, g)
    assert st.carry is None


def test_l2_iterative_schedule(mnist):
    model = make_model(mnist, "gru", 8, seed=0)
    n = sum(p.numel() for p in model.prunable().values())
    patterns = []

    def record(info):
        patterns.append({k: p.detach() != 0 for k, p in model.prunable().items()})

    r = train_l2_iterative(model, mnist, training=TrainingConfig(steps=16, eval_every=2), density=0.05, stage_steps=2,
                           seed=0, device="cpu", callback=record)
    schedule = [d for d in L2_DENSITIES if d > 0.05] + [0.05]
    expected = [round(d * n) / n for d in schedule] + [round(0.05 * n) / n] * 2
    assert r.history["density"].tolist() == pytest.approx(expected, abs=0)
    assert sum(int(m.sum()) for m in r.mask.values()) == round(0.05 * n)
    for k, m in r.mask.items():
        assert (model.rnn[k].detach()[~m] == 0).all()
    for a, b in zip(patterns, patterns[1:]):  # nested: nothing pruned ever comes back
        assert all(bool((b[k] <= a[k]).all()) for k in a)
    with pytest.raises(SpectrumkitError, match=r"train_l2_iterative: expected the last of 6 pruning stages \(every 2 steps\) before the end of training, got 12 steps in all"):
        train_l2_iterative(make_model(mnist, "gru", 8, seed=0), mnist, training=TrainingConfig(steps=12), density=0.05,
                           stage_steps=2, seed=0, device="cpu")


# -------------------------------------------------------------------------------- bad input


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_an_error(mnist):
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(SpectrumkitError, match=r"train: expected a CUDA device|resolve_device"):
        train(make_model(mnist, "gru", 4, seed=0), mnist, training=TrainingConfig(steps=1), seed=0, device="cuda")


@pytest.mark.parametrize("bad, match", [
    ({"weight_xx": None},
     r"expected mask names among the cell's tensors .*got unknown tensor 'weight_xx'"),
    ({"weight_ih": torch.ones(12, 28, dtype=torch.bool)},
     r"expected a mask entry for every cell weight .*got none for 'weight_hh'"),
    ({"weight_ih": torch.ones(12, 28, dtype=torch.bool),
      "weight_hh": torch.ones(12, 3, dtype=torch.bool)},
     r"expected mask\['weight_hh'\] of shape \(12, 4\), got shape \(12, 3\)"),
    ({"weight_ih": torch.ones(12, 28), "weight_hh": torch.ones(12, 4, dtype=torch.bool)},
     r"expected mask\['weight_ih'\] to be a bool tensor, got torch.float32"),
])
def test_mask_mismatch_names_the_tensor(mnist, bad, match):
    with pytest.raises(SpectrumkitError, match=match):
        train(make_model(mnist, "gru", 4, seed=0), mnist, training=TrainingConfig(steps=1), mask=bad, seed=0,
              device="cpu")


@pytest.mark.parametrize("kw, match", [
    ({"lr": 0}, r"TrainingConfig: expected lr to be a finite number > 0, got 0"),
    ({"lr": -1e-3}, r"expected lr to be a finite number > 0"),
    ({"lr": float("nan")}, r"expected lr to be a finite number > 0"),
    ({"batch_size": 0}, r"TrainingConfig: expected batch_size to be a positive integer, got 0"),
    ({"epochs": 1}, r"TrainingConfig: expected exactly one of epochs / steps, got both"),
    ({"steps": 0}, r"train: expected some training \(epochs or steps > 0.*got steps=0"),
    ({"optimizer": "adagrad"}, r"TrainingConfig: expected optimizer to be one of 'adam', 'sgd'"),
    ({"device": "tpu"}, r"resolve_device: expected device 'auto', 'cpu', 'cuda'"),
    ({"clip": 0}, r"TrainingConfig: expected clip to be a finite number > 0"),
    ({"training": {"steps": 1}}, r"train: expected training= a spectrumkit.config.TrainingConfig"),
])
def test_bad_arguments(mnist, kw, match):
    settings = ("lr", "batch_size", "epochs", "steps", "optimizer", "clip")
    args = {"seed": 0, "device": "cpu", **{k: v for k, v in kw.items() if k not in settings}}
    with pytest.raises(SpectrumkitError, match=match):
        if "training" not in args:
            args["training"] = TrainingConfig(**{"steps": 1, **{k: v for k, v in kw.items()
                                                                if k in settings}})
        train(make_model(mnist, "gru", 4, seed=0), mnist, **args)


def test_model_and_task_must_match(mnist):
    add = load_task("adding", T=5, n_train=4, n_val=4, n_test=4)
    with pytest.raises(SpectrumkitError, match=r"train: expected xs of shape \(B, T, D=28\)"):
        train(make_model(mnist, "gru", 4, seed=0), add, training=TrainingConfig(steps=1), seed=0, device="cpu")


def test_progress_bar_only_on_request(mnist, capsys):
    train(make_model(mnist, "gru", 4, seed=0), mnist, training=TrainingConfig(steps=2), seed=0,
          device="cpu")
    # stderr is not a terminal under pytest: plain lines, no bar (NOTE [Progress lines])
    assert capsys.readouterr().err.splitlines()[-1].startswith("train: step 2/2 (epoch 1.00), ")
    train(make_model(mnist, "gru", 4, seed=0), mnist, training=TrainingConfig(steps=2), seed=0,
          device="cpu", progress=False)
    assert capsys.readouterr().err == ""
    train(make_model(mnist, "gru", 4, seed=0), mnist, training=TrainingConfig(steps=2), seed=0,
          device="cpu",
          progress=True)
    assert "train" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ CLI


def test_cli_train_writes_what_train_returns(tmp_path, cli):
    out = tmp_path / "run"
    r = cli("train", "--cell", "gru", "--hidden-size", "6", "--method", "l2", "--sparsity", "0.9",
            "--data", "seq-mnist", "--data-option", "limit=96", "--data-option", "val_limit=32",
            "--steps", "12", "--batch-size", "32", "--seed", "3", "--out", str(out),
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "gru-6 l2 on seq-mnist: ok: val_error_pct" in r.stdout and "wrote" in r.stdout
    task = load_task("seq-mnist", limit=96, val_limit=32)
    model = make_model(task, "gru", 6, init="glorot", seed=3)
    ref = train_l2_iterative(model, task, training=TrainingConfig(steps=12, batch_size=32), density=1 - 0.9, seed=3,
                             device="cpu")
    hist = pd.read_csv(out / "history.csv")
    pd.testing.assert_frame_equal(no_seconds(hist), no_seconds(ref.history), check_exact=False,
                                  rtol=1e-12)
    import json
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["status"] == "ok" and rec["config"]["sparsity"] == 0.9
    assert rec["metrics"]["val_error_pct"] == ref.metrics["val_error_pct"]
    assert rec["metrics"]["density"] == ref.metrics["density"]
    mask = next(iter(load_masks(out / "mask.pt")[0].values()))  # the one mask file format
    assert all(torch.equal(mask[k], ref.mask[k]) for k in ref.mask)
    # no temp files left; .lock is the folder lock (NOTE [Output locks])
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock"]


@pytest.mark.parametrize("args, match", [
    (["--method", "grasp"], "Invalid value for '--method'"),
    (["--method", "dense", "--sparsity", "0.5"],
     "error: spectrumkit train: expected --sparsity 0 with --method dense"),
    (["--data-option", "colour=red"], "error: spectrumkit train: expected --data-option to be an option of task 'seq-mnist' ("),
    (["--lr", "0"], "error: spectrumkit train: expected --lr to be a finite number > 0, got 0"),
])
def test_cli_train_bad_input_is_one_line_exit_2(tmp_path, args, match, cli):
    r = cli("train", "--steps", "1", "--out", str(tmp_path / "x"), "--device", "cpu", *args)
    assert r.returncode == 2 and match in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


@pytest.mark.parametrize("method", ["jacobian", "snip"])
def test_cli_train_with_a_pruning_score_equals_the_library(tmp_path, method, cli):
    """NOTE [train command]: scoring batch from sub_seed(--seed, "score-batch"), score randomness
    from sub_seed(--seed, "scores") (NOTE [Trial randomness]), density 1 - sparsity."""
    from spectrumkit.data import sample_batch
    from spectrumkit.masks import topk_mask
    from spectrumkit.pipeline import sub_seed
    from spectrumkit.scores import compute_scores

    out = tmp_path / "run"
    r = cli("train", "--cell", "gru", "--hidden-size", "6", "--method", method, "--sparsity", "0.8",
            "--data", "seq-mnist", "--data-option", "limit=96", "--data-option", "val_limit=32",
            "--steps", "6", "--batch-size", "32", "--score-batch", "16", "--seed", "3",
            "--out", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    task = load_task("seq-mnist", limit=96, val_limit=32)
    model = make_model(task, "gru", 6, init="glorot", seed=3)
    batch = sample_batch(task.train, 16,
                         generator=torch.Generator().manual_seed(sub_seed(3, "score-batch")))
    expect = topk_mask(compute_scores(method, model, batch, generator=torch.Generator().manual_seed(
        sub_seed(3, "scores"))), 1 - 0.8)
    ref = train(model, task, training=TrainingConfig(steps=6, batch_size=32), mask=expect, seed=3, device="cpu")
    mask = next(iter(load_masks(out / "mask.pt")[0].values()))  # the one mask file format
    assert all(torch.equal(mask[k], expect[k]) for k in expect)
    hist = pd.read_csv(out / "history.csv")
    pd.testing.assert_frame_equal(no_seconds(hist), no_seconds(ref.history), check_exact=False,
                                  rtol=1e-12)


# ------------------------------------------------ checkpoint identity and bad checkpoints


def test_resume_refuses_a_checkpoint_of_another_experiment(mnist, tmp_path):
    """The checkpoint identifies the run; a different init (same sizes, same seed), seed,
    size, dtype or caller identity is refused, naming the field, never loaded over."""
    ckdir = tmp_path / "ck"
    kw = {"training": TrainingConfig(steps=2, batch_size=16), "seed": 0, "device": "cpu",
          "checkpoint_dir": ckdir}
    train(make_model(mnist, "gru", 4, seed=0), mnist, identity={"init": "glorot"}, **kw)
    other = [
        (make_model(mnist, "gru", 4, init="normal:1", seed=0), {"init": "normal:1"},
         r"differs in init \('glorot' in the checkpoint, 'normal:1' now\), initial_weights"),
        (make_model(mnist, "gru", 4, init="normal:1", seed=0), None, r"init .*, initial_weights"),
        (make_model(mnist, "gru", 4, seed=1), {"init": "glorot"}, r"differs in initial_weights"),
        (make_model(mnist, "gru", 5, seed=0), {"init": "glorot"},
         r"differs in initial_weights, shapes"),
        (make_model(mnist, "gru", 4, seed=0, dtype=F64), {"init": "glorot"},
         r"differs in initial_weights, dtype"),
    ]
    for model, identity, message in other:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(SpectrumkitError, match=rf"train: expected a checkpoint in {ckdir} made "
                           rf"by the same run .*{message}"):
            train(model, mnist, identity=identity, **kw)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(SpectrumkitError, match=r"differs in routine"):
        train_l2_iterative(make_model(mnist, "gru", 4, seed=0), mnist, density=0.5,
                           identity={"init": "glorot"},
                           **{**kw, "training": TrainingConfig(steps=4, batch_size=16)})
    r = train(make_model(mnist, "gru", 4, seed=0), mnist, identity={"init": "glorot"}, **kw)
    assert r.metrics["steps"] == 2  # the same run resumes (and is already finished)


class _NotAllowed:  # pickled by reference: torch.load(weights_only=True) blocks it
    pass


@pytest.mark.parametrize("kind", ["blocked-pickle", "saved-list", "truncated", "foreign-dict",
                                  "other-version"])
def test_corrupt_or_foreign_checkpoint_is_one_line_naming_the_file(mnist, tmp_path, kind):
    """Every unreadable checkpoint is a one-line error naming the file and the way out
    (--no-resume), never an UnpicklingError, AttributeError, OSError or KeyError."""
    import fractions

    ckdir = tmp_path / "ck"
    ckdir.mkdir()
    path = ckdir / "checkpoint.pt"
    kw = {"training": TrainingConfig(steps=2, batch_size=16), "seed": 0, "device": "cpu",
          "checkpoint_dir": ckdir}
    if kind in ("truncated", "other-version"):
        train(make_model(mnist, "gru", 4, seed=0), mnist, **kw)
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
        else:
            ck = torch.load(path, weights_only=True)
            torch.save({**ck, "version": 0}, path)
    else:
        torch.save({"blocked-pickle": {"x": fractions.Fraction(1, 2)}, "saved-list": [1, 2, 3],
                    "foreign-dict": {"model": {}}}[kind], path)
    with pytest.raises(SpectrumkitError) as e:
        train(make_model(mnist, "gru", 4, seed=0), mnist, **kw)
    msg = str(e.value)
    assert msg.startswith("train: expected ") and str(path) in msg and "--no-resume" in msg, msg
    assert "\n" not in msg
