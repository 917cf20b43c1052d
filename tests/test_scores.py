"""Scores against references: finite differences of the loss, of an independent χ built from
reference_jacobian, of γ, and of the gradient (Foresight); closed forms for the simple scores."""

import pytest
import torch

from spectrumkit import SpectrumkitError, unroll
from spectrumkit.jacobians import reference_jacobian
from spectrumkit.masks import topk_mask
from spectrumkit.models import LanguageModel, SequenceClassifier
from spectrumkit.scores import METHODS, compute_gamma, compute_scores

from .cases import USER_CELL
from .conftest import assert_close

F64 = torch.float64
EPS = 1e-6
TOL = {"atol": 1e-5, "rtol": 1e-3}  # torch.autograd.gradcheck's

# torch.func.jvp's first call loads forward-AD decompositions through torch.jit.script, which
# warns once per process in torch 2.13; pytest turns warnings into errors.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def _classifier(cell, D=3, N=4, C=3, B=3, T=4, seed=0):
    g = torch.Generator().manual_seed(seed + 100)
    m = SequenceClassifier(cell, D, N, C, seed=seed, dtype=F64)
    batch = (torch.randn(B, T, D, generator=g, dtype=F64), torch.randint(0, C, (B,), generator=g))
    return m, batch


def _lm(cell="lstm", V=7, E=3, N=3, B=2, T=4, seed=0):
    g = torch.Generator().manual_seed(seed + 100)
    m = LanguageModel(cell, V, E, N, seed=seed, dtype=F64)
    toks = torch.randint(0, V, (B, T + 1), generator=g)
    return m, (toks[:, :-1], toks[:, 1:])


def _fd(f, theta):
    """Central differences of the scalar f(params) w.r.t. every entry of every tensor in theta."""
    out = {}
    for n, p in theta.items():
        d = torch.zeros_like(p).reshape(-1)
        for i in range(p.numel()):
            e = torch.zeros_like(p).reshape(-1)
            e[i] = EPS
            hi = f({**theta, n: p + e.view_as(p)})
            lo = f({**theta, n: p - e.view_as(p)})
            d[i] = (hi - lo) / (2 * EPS)
        out[n] = d.view_as(p)
    return out


def _detached(model, include_bias=False):
    return {n: p.detach().clone() for n, p in model.prunable(include_bias).items()}


def _loss_fc(model, batch, theta):
    # model.loss calls model(...) inside; swap the cell parameters in, compute, swap back.
    saved = {n: model.rnn[n].data for n in theta}
    try:
        for n, t in theta.items():
            model.rnn[n].data = t
        with torch.no_grad():
            return model.loss(batch)
    finally:
        for n, t in saved.items():
            model.rnn[n].data = t


# --------------------------------------------------------------------------------------------------
# SNIP
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["gru", "lstm", USER_CELL], ids=["gru", "lstm", "user"])
def test_snip_equals_theta_times_fd_of_loss(cell):
    m, batch = _classifier(cell)
    theta = _detached(m)
    fd = _fd(lambda th: _loss_fc(m, batch, th), theta)
    s = compute_scores("snip", m, batch)
    for n in theta:
        assert_close(s[n], (theta[n] * fd[n]).abs(), **TOL, what=n)


def test_snip_language_model_and_bias():
    m, batch = _lm()
    theta = _detached(m, include_bias=True)
    fd = _fd(lambda th: _loss_fc(m, batch, th), theta)
    s = compute_scores("snip", m, batch, include_bias=True)
    assert list(s) == list(m.prunable(True))
    for n in theta:
        assert_close(s[n], (theta[n] * fd[n]).abs(), **TOL, what=n)


# --------------------------------------------------------------------------------------------------
# γ
# --------------------------------------------------------------------------------------------------


def _gamma_objective(model, xg, s0):
    """Γ(θ) = (1/B) Σ_b Σ_t Σ_i h_{b,i}^(t), the quantity γ differentiates."""
    def f(theta):
        params = {**{n: p.detach() for n, p in model.cell_params().items()}, **theta}
        states = unroll(model.cell, params, xg, s0)
        return model.cell.output(states[1:]).sum() / xg.shape[1]
    return f


def _gamma_draws(model, xs, seed, inputs, state):
    """The documented draws of NOTE [γ normalization]: inputs first, then the state, CPU."""
    g = torch.Generator().manual_seed(seed)
    T, B, D = xs.shape
    S = model.cell.state_size(model.hidden_size)
    x = xs if inputs == "data" else 0.1 * torch.randn(T, B, D, generator=g, dtype=F64) + (
        1.0 if inputs == "authors" else 0.0)
    s0 = torch.zeros(B, S, dtype=F64) if state == "zero" else 1 + 0.1 * torch.randn(
        B, S, generator=g, dtype=F64)
    return x, s0


@pytest.mark.parametrize("inputs,state", [("gaussian", "zero"), ("authors", "authors"),
                                          ("data", "zero")])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gamma_equals_fd(cell, inputs, state):
    m, batch = _classifier(cell)
    xs = batch[0].transpose(0, 1)[:, :2]
    x, s0 = _gamma_draws(m, xs, 5, inputs, state)
    fd = _fd(_gamma_objective(m, x, s0), _detached(m))
    got = compute_gamma(m, batch, generator=torch.Generator().manual_seed(5), inputs=inputs,
                        state=state, batch_size=2)
    for n in fd:
        assert_close(got[n], fd[n], **TOL, what=n)


def _den(gamma, floor=1e-3):
    tau = floor * torch.cat([g.abs().reshape(-1) for g in gamma.values()]).mean()
    return {n: torch.maximum(g.abs(), tau) for n, g in gamma.items()}


def test_gamma_guard_floor_and_all_zero():
    m, batch = _classifier("gru")
    raw = compute_scores("jacobian", m, batch, normalize="none", horizon=2)
    gam = {n: torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
           for n, p in m.prunable().items()}
    gam["weight_hh"][0, :2] = 0.0  # |γ| = 0: the floor τ = 1e-3 · mean|γ| applies
    s = compute_scores("jacobian", m, batch, horizon=2, gamma=gam, recipe="legacy")
    den = _den(gam)
    for n in raw:
        assert_close(s[n], raw[n] / den[n], atol=0, rtol=1e-12, what=n)
    tau = 1e-3 * torch.cat([g.abs().reshape(-1) for g in gam.values()]).mean()
    assert_close(s["weight_hh"][0, :2], raw["weight_hh"][0, :2] / tau, atol=0, rtol=1e-12)
    zero = {n: torch.zeros_like(g) for n, g in gam.items()}
    with pytest.raises(SpectrumkitError, match="not zero everywhere.*got .γ. = 0 for all 84"):
        compute_scores("jacobian", m, batch, gamma=zero, recipe="legacy")


# --------------------------------------------------------------------------------------------------
# The jacobian score against an independent χ
# --------------------------------------------------------------------------------------------------


def _chis(cell, params, xs, states, steps, probes):
    """χ for each estimator from reference_jacobian: {est: (len(steps),)} batch means."""
    J = reference_jacobian(cell, params, xs, states=states, steps=steps)  # (U, B, S, S)
    S = J.shape[-1]
    ones = torch.ones(S, dtype=F64)
    out = {
        "ones": (J @ ones).pow(2).sum(-1) / S,
        "transpose": (J.transpose(-1, -2) @ ones).pow(2).sum(-1) / S,
        "frobenius": J.pow(2).sum((-1, -2)) / S,
    }
    if probes is not None:  # probes[u]: (k, B, S) Rademacher, in the order of steps
        jv = torch.einsum("ubij,ukbj->ukbi", J, probes)
        out["hutchinson"] = jv.pow(2).sum(-1).mean(1) / S
    return {k: v.mean(-1) for k, v in out.items()}


def _independent_raw(model, xs, U, through_time, discount, probes):
    """Σ_u λ^{u-1} |∂χ^(u)/∂θ| by central differences of the independent χ, every estimator."""
    cell, T = model.cell, xs.shape[0]
    steps = [T - u + 1 for u in range(1, U + 1)]  # χ^(u) ↔ J_{T-u+1} (NOTE [Horizon indexing])
    base = {n: p.detach() for n, p in model.cell_params().items()}
    fixed = unroll(cell, base, xs)
    theta = _detached(model)
    ests = ["ones", "transpose", "frobenius"] + (["hutchinson"] if probes is not None else [])
    grads = {}
    for n, p in theta.items():
        for i in range(p.numel()):
            vals = []
            for sign in (1, -1):
                q = p.clone().reshape(-1)
                q[i] += sign * EPS
                params = {**base, n: q.view_as(p)}
                states = unroll(cell, params, xs) if through_time else fixed
                c = _chis(cell, params, xs, states, steps, probes)
                vals.append(torch.stack([c[e] for e in ests]))  # (E, U), steps ascending
            d = (vals[0] - vals[1]) / (2 * EPS)
            grads[(n, i)] = d.flip(-1)  # column u-1 is horizon u (step T-u+1)
    w = torch.tensor([discount ** u for u in range(U)], dtype=F64)
    out = {}
    for k, e in enumerate(ests):
        out[e] = {n: torch.stack([(grads[(n, i)][k].abs() * w).sum() for i in range(p.numel())])
                  .view_as(p) for n, p in theta.items()}
    return out


def _probes(seed, U, B, S, k):
    g = torch.Generator().manual_seed(seed)  # chi_step's draws, in the order u = 1..U
    v = [torch.randint(0, 2, (k, B, S), generator=g).to(F64) * 2 - 1 for _ in range(U)]
    return torch.stack(v[::-1])  # ascending steps, like reference_jacobian's output


@pytest.mark.parametrize("through_time", [False, True], ids=["held", "through"])
@pytest.mark.parametrize("cell", ["gru", "lstm", USER_CELL], ids=["gru", "lstm", "user"])
def test_jacobian_equals_fd_of_independent_chi(cell, through_time):
    D, N, T, B, U, lam = (3, 4, 4, 3, 3, 0.9) if cell == "gru" else (2, 3, 4, 2, 2, 0.9)
    m, batch = _classifier(cell, D=D, N=N, B=B, T=T)
    xs = batch[0].transpose(0, 1)
    S = m.cell.state_size(N)
    probes = _probes(11, U, B, S, 2)
    raw = _independent_raw(m, xs, U, through_time, lam, probes)
    fd_gamma = {}
    for inputs in ("data", "gaussian"):
        x, s0 = _gamma_draws(m, xs, 3, inputs, "zero")
        fd_gamma[inputs] = _fd(_gamma_objective(m, x, s0), _detached(m))
    for est in ("ones", "transpose", "frobenius", "hutchinson"):
        opts = {"horizon": U, "estimator": est, "through_time": through_time, "discount": lam,
                **({"probes": 2} if est == "hutchinson" else {})}
        got = compute_scores("jacobian", m, batch, normalize="none",
                             generator=torch.Generator().manual_seed(11), **opts)
        for n in got:
            assert_close(got[n], raw[est][n], **TOL, what=f"{est} raw {n}")
        for inputs in (("data",) if est == "hutchinson" else ("data", "gaussian")):
            g = torch.Generator().manual_seed(3 if inputs == "gaussian" else 11)
            got = compute_scores("jacobian", m, batch, generator=g, gamma_inputs=inputs,
                                 recipe="legacy", **opts)
            den = _den(fd_gamma[inputs])
            for n in got:
                assert_close(got[n], raw[est][n] / den[n], **TOL, what=f"{est} {inputs} {n}")


def test_jacobian_language_model_and_batch_size():
    m, batch = _lm("gru", N=3)
    xs = m.embed(batch[0]).detach()[:, :1]
    raw = _independent_raw(m, xs, 2, False, 1.0, None)
    got = compute_scores("jacobian", m, batch, normalize="none", horizon=2, batch_size=1)
    for n in got:
        assert_close(got[n], raw["ones"][n], **TOL, what=n)


# --------------------------------------------------------------------------------------------------
# Foresight
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_foresight_hg_equals_fd_of_gradient_along_g(cell):
    m, batch = _classifier(cell)
    theta = m.prunable()
    names = list(theta)

    def grad_at(shift):
        saved = {n: theta[n].data.clone() for n in names}
        try:
            for n in names:
                theta[n].data += shift[n]
            gs = torch.autograd.grad(m.loss(batch), [theta[n] for n in names])
            return dict(zip(names, gs))
        finally:
            for n in names:
                theta[n].data.copy_(saved[n])

    g = grad_at({n: torch.zeros_like(theta[n]) for n in names})
    hi = grad_at({n: EPS * g[n] for n in names})
    lo = grad_at({n: -EPS * g[n] for n in names})
    s = compute_scores("foresight", m, batch)
    for n in names:
        hg = (hi[n] - lo[n]) / (2 * EPS)
        assert_close(s[n], theta[n].detach() * hg, **TOL, what=n)
        assert not torch.equal(s[n].abs(), s[n])  # signed: keep the highest θ ⊙ Hg
    sn = compute_scores("foresight", m, batch, normalize="gamma", gamma_inputs="data")
    gam = compute_gamma(m, batch, inputs="data")
    for n in names:
        assert_close(sn[n], s[n] / _den(gam)[n], atol=0, rtol=1e-10, what=n)


# --------------------------------------------------------------------------------------------------
# magnitude, random, synflow, balance
# --------------------------------------------------------------------------------------------------


def test_random_is_uniform_draws_in_prunable_order():
    m, batch = _classifier("lstm")
    s = compute_scores("random", m, batch, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    for n, p in m.prunable().items():
        assert torch.equal(s[n], torch.rand(p.shape, generator=g, dtype=F64))


def _synflow_R(model, T):
    D = model.input_size
    S = model.cell.state_size(model.hidden_size)
    absp = {n: p.detach().abs() for n, p in model.cell_params().items()}

    def f(theta):
        states = unroll(model.cell, {**absp, **theta}, torch.ones(T, 1, D, dtype=F64),
                        torch.zeros(1, S, dtype=F64))
        return model.cell.output(states[-1]).sum()
    return f, absp


def test_synflow_one_round_equals_fd():
    m, batch = _classifier("gru")
    f, absp = _synflow_R(m, 4)
    theta = {n: absp[n] for n in m.prunable()}
    fd = _fd(f, theta)
    s = compute_scores("synflow", m, batch, density=1.0, iterations=1)
    for n in theta:
        assert_close(s[n], theta[n] * fd[n], **TOL, what=n)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_synflow_iterative_mask_matches_reference_loop(cell):
    m, batch = _classifier(cell, D=3, N=4)
    f, absp = _synflow_R(m, 4)
    names = sorted(m.prunable())
    sizes = [absp[n].numel() for n in names]
    P, n_rounds, density = sum(sizes), 4, 0.3
    alive = list(range(P))
    for k in range(1, n_rounds + 1):
        flat_mask = torch.zeros(P, dtype=F64)
        flat_mask[alive] = 1.0
        masks = dict(zip(names, flat_mask.split(sizes)))
        theta = {n: (absp[n] * masks[n].view_as(absp[n])).requires_grad_() for n in names}
        gs = torch.autograd.grad(f(theta), [theta[n] for n in names])
        sc = torch.cat([(theta[n].detach() * g).reshape(-1) for n, g in zip(names, gs)]).tolist()
        K = int(density ** (k / n_rounds) * P + 0.5)
        alive = sorted(sorted(alive, key=lambda i: (-sc[i], i))[:K])
    s = compute_scores("synflow", m, batch, density=density, iterations=n_rounds)
    mask = topk_mask(s, density)
    got = torch.cat([mask[n].reshape(-1) for n in names]).nonzero().flatten().tolist()
    assert got == alive


def test_balance_gate_and_block_closed_form():
    m, batch = _classifier("gru", N=4)
    mag = compute_scores("magnitude", m, batch)
    for how in ("gate", "block"):
        s = compute_scores("magnitude", m, batch, balance=how)
        if how == "block":
            for n in s:  # weight_ih is the input block, weight_hh the recurrent block
                assert_close(s[n], mag[n] / mag[n].mean(), atol=0, rtol=1e-12, what=n)
        else:
            for gi in range(3):
                rows = slice(gi * 4, (gi + 1) * 4)
                mean = torch.cat([mag[n][rows].reshape(-1) for n in mag]).mean()
                for n in s:
                    assert_close(s[n][rows], mag[n][rows] / mean, atol=0, rtol=1e-12)


# --------------------------------------------------------------------------------------------------
# Determinism, models, bad input
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,opts", [
    ("jacobian", {}), ("jacobian", {"estimator": "hutchinson", "gamma_state": "authors"}),
    ("snip", {"normalize": "gamma"}), ("foresight", {}), ("random", {}),
    ("synflow", {"density": 0.2, "iterations": 3}), ("magnitude", {"balance": "gate"}),
])
def test_same_seed_bit_identical_masks_and_global_rng_untouched(method, opts):
    m, batch = _classifier("gru", D=3, N=5, B=4, T=5)
    state = torch.random.get_rng_state()
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    a = compute_scores(method, m, batch, generator=torch.Generator().manual_seed(9), **opts)
    b = compute_scores(method, m, batch, generator=torch.Generator().manual_seed(9), **opts)
    ma, mb = topk_mask(a, 0.2), topk_mask(b, 0.2)
    assert all(torch.equal(a[n], b[n]) and torch.equal(ma[n], mb[n]) for n in a)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert flags == {n: p.requires_grad for n, p in m.named_parameters()}
    assert all(p.grad is None for p in m.parameters())


def test_scores_work_under_no_grad_and_frozen_params():
    m, batch = _classifier("gru")
    ref = compute_scores("snip", m, batch)
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        got = compute_scores("snip", m, batch)
    assert all(torch.equal(ref[n], got[n]) for n in ref)
    assert not any(p.requires_grad for p in m.parameters())


def test_shared_gamma_equals_own_gamma():
    m, batch = _classifier("lstm")
    gam = compute_gamma(m, batch, generator=torch.Generator().manual_seed(2))
    for method in ("jacobian", "snip", "foresight"):
        legacy = {"recipe": "legacy"} if method == "jacobian" else {}
        own = compute_scores(method, m, batch, generator=torch.Generator().manual_seed(2),
                             normalize="gamma", **legacy)
        shared = compute_scores(method, m, batch, normalize="gamma", gamma=gam, **legacy)
        assert all(torch.equal(own[n], shared[n]) for n in own), method
    # the default recipe's γ (NOTE [Recipes]) from compute_gamma's own options
    gam = compute_gamma(m, batch, generator=torch.Generator().manual_seed(2), state="authors",
                        steps=5, sequences=100, readout="last", objective="chi",
                        estimator="ones")
    own = compute_scores("jacobian", m, batch, generator=torch.Generator().manual_seed(2))
    shared = compute_scores("jacobian", m, batch, gamma=gam)
    assert all(torch.equal(own[n], shared[n]) for n in own)


def _raises(match, *args, **kw):
    with pytest.raises(SpectrumkitError, match=match) as e:
        compute_scores(*args, **kw)
    assert str(e.value).startswith("compute_scores: expected")


def test_bad_input_rows():
    m, batch = _classifier("gru")
    g = torch.Generator().manual_seed(0)
    _raises("method one of 'jacobian', 'snip'.*got 'grasp'", "grasp", m, batch)
    _raises("options of method 'jacobian' among horizon, estimator.*got horizn", "jacobian", m,
            batch, generator=g, horizn=4)
    _raises("options of method 'snip' among normalize.*got horizon", "snip", m, batch, horizon=4)
    _raises("horizon to be a positive integer, got '4'", "jacobian", m, batch, generator=g,
            horizon="4")
    _raises("estimator to be one of 'ones', 'transpose', 'frobenius', 'hutchinson', got 'frob'",
            "jacobian", m, batch, generator=g, estimator="frob")
    _raises(r"horizon U in 1..T=4 .*got 5", "jacobian", m, batch, generator=g, horizon=5)
    _raises("horizon to be a positive integer, got 0", "jacobian", m, batch, generator=g,
            horizon=0)
    _raises("through_time to be True or False, got 1", "jacobian", m, batch, generator=g,
            through_time=1)
    _raises("normalize to be one of 'gamma', 'none', got 'l2'", "snip", m, batch, normalize="l2")
    _raises("balance to be one of 'none', 'gate', 'block'", "random", m, batch, generator=g,
            balance="row")
    _raises("discount in", "jacobian", m, batch, generator=g, discount=0.0)
    _raises("gamma options only together with normalize='gamma', got gamma_inputs with "
            "normalize='none'", "snip", m, batch, gamma_inputs="data")
    _raises("probes only together with estimator='hutchinson'", "jacobian", m, batch,
            generator=g, probes=3)
    _raises("generator= a torch.Generator .*gamma_inputs='gaussian'.*got NoneType", "jacobian",
            m, batch)
    _raises("generator= a torch.Generator .*method 'random'", "random", m, batch)
    _raises("density= for synflow", "synflow", m, batch)
    _raises("either a precomputed gamma= or", "snip", m, batch, normalize="gamma",
            gamma_inputs="data", gamma=compute_gamma(m, batch, inputs="data"))
    _raises(r"xs of shape \(B, T, D=3\), got shape \(3, 4\)", "snip", m, (batch[0][..., 0],
                                                                          batch[1]))
    _raises(r"labels in \[0, 3\), got range \[0, 7\]", "snip", m,
            (batch[0], torch.tensor([0, 7, 1])))
    _raises("dtype torch.float64", "snip", m, (batch[0].float(), batch[1]))
    _raises("a spectrumkit model", "snip", torch.nn.GRU(3, 4), batch)
    lm, lb = _lm()
    _raises(r"inputs token ids in \[0, 7\), got range", "snip", lm, (lb[0] + 7, lb[1]))


def test_balance_needs_a_layout():
    from spectrumkit.cells import make_cell

    nolayout = make_cell("bare", USER_CELL.step, USER_CELL.param_shapes)
    m, batch = _classifier(nolayout, D=2, N=3)
    s = compute_scores("magnitude", m, batch)  # every score works without a layout
    assert set(s) == {"A", "B"}
    _raises("balance='gate' only for a cell with a layout", "magnitude", m, batch, balance="gate")


def test_methods_listed():
    assert METHODS == ("jacobian", "snip", "foresight", "magnitude", "random", "synflow")


# --------------------------------------------------------------------------------------------------
# γ's own sequence: length, count, readout, objective
# --------------------------------------------------------------------------------------------------


def _own_sequence(model, D, steps, seqs, seed, state):
    """NOTE [γ normalization]'s draws for a sequence of its own: inputs first, then the state."""
    g = torch.Generator().manual_seed(seed)
    S = model.cell.state_size(model.hidden_size)
    x = 0.1 * torch.randn(steps, seqs, D, generator=g, dtype=F64)
    s0 = (torch.zeros(seqs, S, dtype=F64) if state == "zero"
          else 1 + 0.1 * torch.randn(seqs, S, generator=g, dtype=F64))
    return x, s0


def _gamma_objective_of(model, x, s0, readout, objective, estimator="transpose"):
    """The scalar γ differentiates, rebuilt from unroll and reference_jacobian (NOTE [γ objective])."""
    cell, T = model.cell, x.shape[0]

    def f(theta):
        params = {**{n: p.detach() for n, p in model.cell_params().items()}, **theta}
        states = unroll(cell, params, x, s0)
        if objective == "hidden":
            read = states[1:] if readout == "sum" else states[-1:]
            return cell.output(read).sum() / x.shape[1]
        steps = list(range(1, T + 1)) if readout == "sum" else [T]
        chis = _chis(cell, params, x, states, steps, None)[estimator]  # (len(steps),) batch means
        return chis.sum()
    return f


GAMMA_OPTIONS = [
    ("last", "hidden", "transpose"), ("sum", "hidden", "transpose"), ("last", "chi", "transpose"),
    ("sum", "chi", "ones"), ("last", "chi", "frobenius")]


@pytest.mark.parametrize("cell,readout,objective,estimator", [
    pytest.param(cell, *opts, id="-".join((cell, *opts)),
                 # the LSTM's summed-readout case takes several seconds (NOTE [Two tiers])
                 marks=[pytest.mark.slow] if (cell, *opts) == ("lstm", "sum", "chi", "ones") else [])
    for cell in ("gru", "lstm") for opts in GAMMA_OPTIONS])
def test_gamma_own_sequence_options_equal_fd(cell, readout, objective, estimator):
    m, batch = _classifier(cell)  # the batch has T=4, B=3: γ's sequence differs in both
    x, s0 = _own_sequence(m, 3, 2, 5, 7, "authors")
    fd = _fd(_gamma_objective_of(m, x, s0, readout, objective, estimator), _detached(m))
    got = compute_gamma(m, batch, generator=torch.Generator().manual_seed(7), state="authors",
                        steps=2, sequences=5, readout=readout, objective=objective,
                        estimator=estimator)
    for n in fd:
        assert_close(got[n], fd[n], **TOL, what=f"{readout} {objective} {n}")
    # the same γ through compute_scores: snip divided by it (chi objective: transpose)
    if estimator == "transpose":
        s = compute_scores("snip", m, batch, generator=torch.Generator().manual_seed(7),
                           normalize="gamma", gamma_state="authors", gamma_steps=2,
                           gamma_sequences=5, gamma_readout=readout, gamma_objective=objective,
                           gamma_floor=0.0)
        raw = compute_scores("snip", m, batch)
        for n in s:
            assert_close(s[n], raw[n] / fd[n].abs(), **TOL, what=f"snip/γ {n}")


def test_gamma_data_inputs_take_the_first_steps_and_examples():
    m, batch = _classifier("gru", B=3, T=4)
    x = batch[0].transpose(0, 1)[:3, :2]
    fd = _fd(_gamma_objective_of(m, x, torch.zeros(2, 4, dtype=F64), "last", "hidden"),
             _detached(m))
    got = compute_gamma(m, batch, inputs="data", steps=3, sequences=2, readout="last")
    for n in fd:
        assert_close(got[n], fd[n], **TOL, what=n)


# --------------------------------------------------------------------------------------------------
# Recipes: the authors' score rebuilt independently, inside the test
# --------------------------------------------------------------------------------------------------


def _torch_gru_step(W_ih, W_hh, b_ih, b_hh, x, h):
    """PyTorch's GRU, written out gate by gate (r, z, n row blocks)."""
    N = h.shape[-1]
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r = torch.sigmoid(gi[:, :N] + gh[:, :N])
    z = torch.sigmoid(gi[:, N:2 * N] + gh[:, N:2 * N])
    n = torch.tanh(gi[:, 2 * N:] + r * gh[:, 2 * N:])
    return (1 - z) * n + z * h


def _authors_score(model, xs, seed, U=4, lam=0.9, steps=5, seqs=100):
    """docs/authors-code.md §3-§4 transcribed: Σ_u λ^u |∂ mean (J_{T-u}ᵀ1)² / ∂W| / |∂χ̃/∂W|."""
    p = {n: t.detach().clone().requires_grad_(n.startswith("weight"))
         for n, t in model.cell_params().items()}
    W = [p["weight_ih"], p["weight_hh"]]

    def step(x, h):
        return _torch_gru_step(p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], x, h)

    def chi(prev, new):  # v = Jᵀ1 as a vector-Jacobian product, per example; mean of v²
        v, = torch.autograd.grad(new, prev, torch.ones_like(new), create_graph=True)
        return v.pow(2).mean()

    T, B, D = xs.shape
    hs = [torch.zeros(B, model.hidden_size, dtype=F64)]
    for t in range(T):
        hs.append(step(xs[t], hs[-1]))
    num = [torch.zeros_like(w) for w in W]
    for u in range(U):  # y = h_{T-u}, x = h_{T-u-1}, through the whole unroll
        gs = torch.autograd.grad(chi(hs[T - u - 1], hs[T - u]), W, retain_graph=True)
        num = [a + lam ** u * g.abs() for a, g in zip(num, gs)]
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(steps, seqs, D, generator=g, dtype=F64)       # dummy_noise
    h = 1 + 0.1 * torch.randn(seqs, model.hidden_size, generator=g, dtype=F64)  # s0 = 1 + N
    for t in range(steps - 1):
        h = step(x[t], h)
    gam = torch.autograd.grad(chi(h, step(x[steps - 1], h)), W)
    return {"weight_ih": num[0] / gam[0].abs(), "weight_hh": num[1] / gam[1].abs()}


@pytest.mark.parametrize("B,T", [(6, 7), (3, 5)])
def test_recipe_authors_equals_independent_transcription(B, T):
    m, batch = _classifier("gru", D=3, N=4, B=B, T=T, seed=1)
    xs = batch[0].transpose(0, 1)
    want = _authors_score(m, xs, 9)
    got = compute_scores("jacobian", m, batch, recipe="authors",
                         generator=torch.Generator().manual_seed(9))
    for n in want:
        assert_close(got[n], want[n], atol=0, rtol=1e-10, what=n)
    # explicit options override the recipe's values
    want = _authors_score(m, xs, 9, U=2, lam=1.0, steps=3, seqs=7)
    got = compute_scores("jacobian", m, batch, recipe="authors", horizon=2, discount=1.0,
                         gamma_steps=3, gamma_sequences=7,
                         generator=torch.Generator().manual_seed(9))
    for n in want:
        assert_close(got[n], want[n], atol=0, rtol=1e-10, what=f"override {n}")


def test_recipe_paper_is_gamma_of_the_last_step_over_the_batch_sequence():
    m, batch = _classifier("gru", seed=2)
    xs = batch[0].transpose(0, 1)
    raw = _independent_raw(m, xs, 4, False, 1.0, None)["ones"]
    x, s0 = _gamma_draws(m, xs, 4, "gaussian", "zero")
    den = _den(_fd(_gamma_objective_of(m, x, s0, "last", "hidden"), _detached(m)))
    got = compute_scores("jacobian", m, batch, recipe="paper",
                         generator=torch.Generator().manual_seed(4))
    for n in got:
        assert_close(got[n], raw[n] / den[n], **TOL, what=n)


def test_recipe_table_lists_every_recipe_and_option():
    from spectrumkit.scores import DEFAULT_RECIPE, OPTIONS, RECIPES, recipe_table

    text = recipe_table()
    assert set(RECIPES) >= {"legacy", "paper", "authors"} and DEFAULT_RECIPE in RECIPES
    for r in RECIPES.values():  # every recipe sets every jacobian option except the free ones
        assert set(r.score) == set(OPTIONS["jacobian"]) - {"probes", "gamma", "recipe"}, r.name
    assert OPTIONS["jacobian"]["recipe"] == DEFAULT_RECIPE
    assert all(OPTIONS["jacobian"][k] == v for k, v in RECIPES[DEFAULT_RECIPE].score.items())
    assert "| gamma_steps | batch | batch | 5 |" in text


def test_recipe_bad_input():
    m, batch = _classifier("gru")
    g = torch.Generator().manual_seed(0)
    _raises("recipe to be one of 'legacy', 'paper', 'authors'.*got 'author'", "jacobian", m,
            batch, generator=g, recipe="author")
    _raises("recipe to be one of .*got 1", "jacobian", m, batch, generator=g, recipe=1)
    _raises("options of method 'snip' among .*got recipe", "snip", m, batch, recipe="authors")
    _raises("horizon to be a positive integer, got '4'", "jacobian", m, batch, generator=g,
            recipe="authors", horizon="4")
    _raises("through_time to be True or False, got 'yes'", "jacobian", m, batch, generator=g,
            recipe="paper", through_time="yes")
    for name in ("gamma_steps", "gamma_sequences"):
        _raises(f"{name} to be None .* or an integer >= 1, got 0", "jacobian", m, batch,
                generator=g, recipe="authors", **{name: 0})
        _raises(f"{name} to be None .* or an integer >= 1, got '5'", "snip", m, batch,
                normalize="gamma", **{name: "5"})
    _raises("gamma_readout to be one of 'sum', 'last', got 'first'", "jacobian", m, batch,
            generator=g, gamma_readout="first")
    _raises("gamma_objective to be one of 'hidden', 'chi', got 'h'", "jacobian", m, batch,
            generator=g, gamma_objective="h")
    _raises(r"gamma_steps <= T=4 with gamma_inputs='data'", "jacobian", m, batch,
            gamma_inputs="data", gamma_steps=5)
    _raises(r"gamma_floor in \[0, 1\), got -0.1", "jacobian", m, batch, generator=g,
            gamma_floor=-0.1)
    gam = compute_gamma(m, batch, inputs="data")
    for clash in ({"gamma_steps": 5}, {"gamma_sequences": 5}, {"gamma_readout": "last"},
                  {"gamma_objective": "chi"}):
        _raises(f"either a precomputed gamma= or the options that make one .*got gamma= and "
                f"{next(iter(clash))}", "jacobian", m, batch, generator=g, gamma=gam, **clash)
    for kw, msg in (({"steps": 0}, "steps to be a positive integer, got 0"),
                    ({"sequences": 0}, "sequences to be a positive integer, got 0"),
                    ({"readout": "all"}, "readout to be one of 'sum', 'last'"),
                    ({"objective": "chi", "estimator": "frob"}, "estimator to be one of"),
                    ({"inputs": "data", "sequences": 4}, "sequences <= B=3 with inputs='data'")):
        with pytest.raises(SpectrumkitError, match=f"compute_gamma: expected {msg}"):
            compute_gamma(m, batch, generator=g, **kw)
    # no floor: an exactly-zero γ entry is an error, not an Inf score
    zero_in = (batch[0].clone(), batch[1])
    zero_in[0][..., 0] = 0.0  # input feature 0 is always 0: γ of its 3N input weights is 0
    _raises(r"a γ that is nonzero for every entry with gamma_floor=0 .*got \|γ\| = 0 for 12 of "
            r"84 entries", "jacobian", m, zero_in, gamma_inputs="data", gamma_floor=0.0,
            recipe="legacy")
    # with the batch's own inputs, a recipe's 5 steps x 100 sequences are capped at the batch's
    # T=4, B=3 (explicit values above the batch are errors, above)
    capped = compute_scores("jacobian", m, batch, gamma_inputs="data",
                            generator=torch.Generator().manual_seed(1))
    full = compute_scores("jacobian", m, batch, gamma_inputs="data", gamma_steps=4,
                          gamma_sequences=3, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(capped[n], full[n]) for n in full)


def test_recipe_cli_lists_the_table_and_refuses_bad_input(cli):
    from pathlib import Path

    from spectrumkit.scores import recipe_table

    for cmd in ("prune", "train"):
        r = cli(cmd, "--list-recipes")
        assert r.exit_code == 0 and recipe_table() in r.stdout
    # the docs show the same table (one table, read everywhere)
    readme = (Path(__file__).resolve().parents[1] / "docs" / "recipes.md").read_text()
    assert recipe_table() in readme
    tiny = ["--hidden-size", "4", "--input-size", "3", "--seq-len", "5", "--score-batch", "4"]
    for args, msg in (
            (["--recipe", "autors"], ("compute_scores: expected --recipe to be one of 'legacy', "
                                      "'paper', 'authors'")),
            (["--recipe", "authors", "--method", "snip"], ("prune: expected score options that "
                                                           "apply to snip, got --recipe")),
            (["--gamma-steps", "0"], ("expected --gamma-steps to be None (the steps of the batch) "
                                      "or an integer >= 1, got 0")),
            (["--gamma-sequences", "0"], "expected --gamma-sequences to be None"),
            (["--gamma-readout", "first"], "expected --gamma-readout to be one of 'sum', 'last'"),
            (["--gamma-steps", "x"], "'x' is not a valid integer")):
        r = cli("prune", *tiny, *args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error: ") or "Error" in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0 or "Usage" in r.stderr
        assert msg in r.stderr, (args, r.stderr)
    r = cli("train", "--method", "snip", "--sparsity", "0.5", "--recipe", "authors", "--out",
            "unused")
    assert r.exit_code == 2 and r.stderr.strip() == (
        "error: spectrumkit train: expected --recipe only with --method jacobian, got --method snip")
