"""The model contract (spectrumkit.protocols.RecurrentModel) and the sets of choices defined once.

A user's model that subclasses nothing of spectrumkit's meets the contract and is scored like a
built-in one: its magnitude and SNIP scores are compared with |θ| and |θ ⊙ ∂L/∂θ| computed here by
hand with torch.autograd.
"""

import pytest
import torch

from spectrumkit import SpectrumkitError, compute_scores, init_params
from spectrumkit.cells import get
from spectrumkit.choices import ESTIMATORS, FIGURES, INIT_SCHEMES, JACOBIAN_BLOCKS, JACOBIAN_METHODS
from spectrumkit.models import LanguageModel, SequenceClassifier, SequenceRegressor
from spectrumkit.protocols import MODEL_MEMBERS, RecurrentModel, check_model

F64 = torch.float64


def _rnn_final_h(params, xs):
    """h_T of an Elman RNN written out here: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    xs (B, T, D) -> (B, N), h_0 = 0.
    """
    B, T, _ = xs.shape
    h = xs.new_zeros(B, params["weight_hh"].shape[0])
    for t in range(T):
        h = torch.tanh(xs[:, t] @ params["weight_ih"].T + params["bias_ih"]
                       + h @ params["weight_hh"].T + params["bias_hh"])
    return h


def _user_loss(params, readout, batch):
    """Mean squared error of the readout w·h_T against real targets ys (B,)."""
    xs, ys = batch
    return ((_rnn_final_h(params, xs) @ readout - ys) ** 2).mean()


class UserRegressor:
    """A user's model: an RNN cell's parameters dict and a readout vector; no spectrumkit base."""

    def __init__(self, D, N, seed):
        g = torch.Generator().manual_seed(seed)
        self.cell = get("rnn")
        self.input_size, self.hidden_size = D, N
        raw = init_params("rnn", D, N, "normal:0.6", bias="normal:0.2", generator=g, dtype=F64)
        self.params = {k: torch.nn.Parameter(v) for k, v in raw.items()}
        self.readout = torch.randn(N, generator=g, dtype=F64)

    def cell_params(self):
        return dict(self.params)

    def prunable(self, include_bias=False):
        return {k: v for k, v in self.params.items() if include_bias or not self.cell.is_bias(k)}

    def cell_inputs(self, batch):
        return batch[0].transpose(0, 1)

    def check_batch(self, fn, batch):
        if not isinstance(batch, tuple) or len(batch) != 2:
            raise SpectrumkitError(f"{fn}: expected a batch (xs, ys), got {type(batch).__name__}")

    def loss(self, batch):
        return _user_loss(self.params, self.readout, batch)


def _batch(B=5, T=4, D=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, D, generator=g, dtype=F64), torch.randn(B, generator=g, dtype=F64))


@pytest.mark.parametrize("model", [
    SequenceClassifier("gru", 3, 4, 2, seed=0),
    LanguageModel("lstm", 11, 3, 4, seed=0),
    SequenceRegressor("rnn", 3, 4, seed=0),
], ids=["classifier", "language", "regressor"])
def test_builtin_models_meet_the_contract(model):
    assert isinstance(model, RecurrentModel)
    assert check_model("f", model) is model
    # the members hold what the contract says: the cell's tensors, the pruned weights
    assert sorted(model.cell_params()) == sorted(model.cell.param_shapes(3, 4))
    assert sorted(model.prunable()) == ["weight_hh", "weight_ih"]
    assert sorted(model.prunable(include_bias=True)) == sorted(model.cell_params())
    assert all(model.prunable(True)[k] is v for k, v in model.cell_params().items())


def test_user_model_meets_the_contract_and_is_scored_like_a_builtin():
    model = UserRegressor(3, 4, seed=7)
    assert not isinstance(model, torch.nn.Module)
    assert check_model("f", model) is model
    batch = _batch()

    mag = compute_scores("magnitude", model, batch)
    assert sorted(mag) == ["weight_hh", "weight_ih"]
    for k, s in mag.items():
        assert torch.equal(s, model.params[k].detach().abs()), k

    # SNIP by hand: |θ ⊙ ∂L/∂θ| with torch.autograd on fresh leaves holding the same values
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in model.params.items()}
    loss = _user_loss(leaves, model.readout, batch)
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    grads = dict(zip(names, torch.autograd.grad(loss, [leaves[k] for k in names])))
    snip = compute_scores("snip", model, batch)
    snip_b = compute_scores("snip", model, batch, include_bias=True)
    assert sorted(snip_b) == sorted(names)
    for k in names:
        want = (leaves[k].detach() * grads[k]).abs()
        assert float(want.abs().max()) > 0, k  # a real gradient reaches every tensor
        torch.testing.assert_close(snip_b[k], want, rtol=1e-12, atol=1e-15)
        if k in snip:
            torch.testing.assert_close(snip[k], want, rtol=1e-12, atol=1e-15)
    # the user's parameters are left as they were: no .grad written, flags restored
    assert all(p.grad is None and p.requires_grad for p in model.params.values())


def test_object_lacking_members_gets_one_line_naming_them():
    class Half:
        cell = get("rnn")
        input_size = hidden_size = 2

        def cell_params(self):
            return {}

    with pytest.raises(SpectrumkitError) as e:
        check_model("f", Half())
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("f: expected a spectrumkit model")
    assert msg.endswith("got Half lacking prunable, cell_inputs, check_batch, loss")
    assert not isinstance(Half(), RecurrentModel)

    with pytest.raises(SpectrumkitError) as e:
        compute_scores("magnitude", Half(), _batch())
    assert "\n" not in str(e.value)
    assert "Half lacking prunable, cell_inputs, check_batch, loss" in str(e.value)

    with pytest.raises(SpectrumkitError, match="got object lacking " + ", ".join(MODEL_MEMBERS)):
        check_model("f", object())


def test_sets_of_choices_are_the_ones_in_choices_py():
    from spectrumkit import jacobians, spectra
    from spectrumkit.figures import FIGURES as RENDERED
    from spectrumkit.init import parse_scheme

    assert spectra.CHI_ESTIMATORS == ESTIMATORS == ("ones", "transpose", "frobenius", "hutchinson")
    assert jacobians.METHODS == JACOBIAN_METHODS == ("auto", "closed_form", "jacrev", "jacfwd")
    assert jacobians.BLOCKS == JACOBIAN_BLOCKS == ("full", "hh")
    assert tuple(RENDERED) == FIGURES
    # every named init scheme parses to itself, and the grammar in the error lists each of them
    assert [parse_scheme(s).kind for s in INIT_SCHEMES] == list(INIT_SCHEMES)
    assert parse_scheme("xavier").kind == "glorot"
    with pytest.raises(SpectrumkitError) as e:
        parse_scheme("kaiming")
    assert " | ".join(INIT_SCHEMES) in str(e.value)
