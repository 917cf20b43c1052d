r"""The built-in cells' equations: each one-example step and, beside it, its closed-form Jacobian.

Legend: B = batch, D = input size, N = hidden size, S = state size, G = gates. The steps broadcast
over leading batch dimensions. The terms β, α, ρ and matrices M of each closed form are those of
NOTE [Closed-form engine] in ``_closed_form.py``; ``cells.py`` builds the :class:`Cell` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from ._closed_form import ClosedForm, Terms

Params = Mapping[str, torch.Tensor]


def split_state(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = s.shape[-1] // 2
    return s[..., :n], s[..., n:]


def rnn_preact(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return F.linear(x, p["weight_ih"], p["bias_ih"]) + F.linear(s, p["weight_hh"], p["bias_hh"])


def rnn_tanh_step(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return torch.tanh(rnn_preact(p, x, s))


def rnn_relu_step(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return torch.relu(rnn_preact(p, x, s))


def lstm_gates(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    h, _ = split_state(s)
    return F.linear(x, p["weight_ih"], p["bias_ih"]) + F.linear(h, p["weight_hh"], p["bias_hh"])


def peephole_gates(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    h, c = split_state(s)
    return (F.linear(x, p["weight_ih"], p["bias"]) + F.linear(h, p["weight_hh"])
            + F.linear(c, p["weight_ch"]))


def lstm_update(gates: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    i, f, g, o = gates.chunk(4, dim=-1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return torch.cat([h_next, c_next], dim=-1)


def lstm_step(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return lstm_update(lstm_gates(p, x, s), split_state(s)[1])


def peephole_step(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return lstm_update(peephole_gates(p, x, s), split_state(s)[1])


def gru_step(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    gi = F.linear(x, p["weight_ih"], p["bias_ih"])
    gh = F.linear(s, p["weight_hh"], p["bias_hh"])
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * s


# NOTE [GRU with the reset before the product]
# ``gru_cho`` is the GRU of Cho et al. (2014, Eq. 5-8), also Keras' GRU(reset_after=False):
#
#     r  = σ(W_ir x + b_ir + W_hr h + b_hr)          z = σ(W_iz x + b_iz + W_hz h + b_hz)
#     n  = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)  h' = (1 - z) ⊙ n + z ⊙ h
#
# It differs from ``gru`` (torch's form, r ⊙ (W_hn h + b_hn)) only in where r acts: here b_hn is
# NOT multiplied by r, and r reaches ∂h'/∂h through the product W_hn diag(h) ∂r/∂h, which makes the
# Jacobian a per-example matrix product (NOTE [Closed-form engine] in _closed_form.py). The update
# convention is torch's, Keras' and Cho's: z weights the OLD state. The authors of the paper scored
# this form with the opposite convention (z weighting the new candidate) and +0.1 added to every
# pre-activation; ``interop.authors_gru_params`` maps their kernel onto it exactly (NOTE [The
# authors' GRU] in interop.py). Same tensors, gate order (r, z, n) and counts as ``gru``.


def gru_cho_preacts(p: Params, x: torch.Tensor, s: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(r, z, a_n, c): the gates r and z, the candidate's pre-activation and the product c = r ⊙ h.

    The recurrent rows of r and z are one product on h; the candidate's rows act on r ⊙ h.
    """
    N = s.shape[-1]
    i_r, i_z, i_n = F.linear(x, p["weight_ih"], p["bias_ih"]).chunk(3, dim=-1)
    h_r, h_z = F.linear(s, p["weight_hh"][: 2 * N], p["bias_hh"][: 2 * N]).chunk(2, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    c = r * s
    a_n = i_n + F.linear(c, p["weight_hh"][2 * N:], p["bias_hh"][2 * N:])
    return r, z, a_n, c


def gru_cho_step(p: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    _, z, a_n, _ = gru_cho_preacts(p, x, s)
    n = torch.tanh(a_n)
    return (1 - z) * n + z * s


# --------------------------------------------------------------------------------------------------
# Closed forms (NOTE [Closed-form engine])
# --------------------------------------------------------------------------------------------------


def _rnn_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    h = torch.tanh(rnn_preact(p, x, s))
    return Terms((1 - h * h)[:, None, None, :])


def _rnn_relu_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    a = rnn_preact(p, x, s)
    return Terms((a > 0).to(a.dtype)[:, None, None, :])


def _gru_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    i_r, i_z, i_n = F.linear(x, p["weight_ih"], p["bias_ih"]).chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(s, p["weight_hh"], p["bias_hh"]).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    dn = (1 - z) * (1 - n * n)                                  # ∂h'/∂(preactivation of n)
    beta = torch.stack([dn * h_n * r * (1 - r), (s - n) * z * (1 - z), dn * r], dim=-2)
    return Terms(beta[:, None], z[:, None, None, :])


def _gru_cho_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    r, z, a_n, _ = gru_cho_preacts(p, x, s)
    n = torch.tanh(a_n)
    dn = (1 - z) * (1 - n * n)                                  # ∂h'/∂(preactivation of n)
    beta = torch.stack([torch.zeros_like(z), (s - n) * z * (1 - z), dn], dim=-2)
    # ∂(r ⊙ h)/∂h = diag ρ₁ + diag ρ₂ W_hr
    rho = torch.stack([r, s * r * (1 - r)], dim=-2)
    return Terms(beta[:, None], z[:, None, None, :], rho)


def _lstm_terms_from_gates(gates: torch.Tensor, c: torch.Tensor):
    i, f, g, o = gates.chunk(4, dim=-1)
    si, sf, tg, so = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    tc = torch.tanh(sf * c + si * tg)
    d = so * (1 - tc * tc)                                      # ∂h'/∂c'
    bc = [tg * si * (1 - si), c * sf * (1 - sf), si * (1 - tg * tg), torch.zeros_like(c)]
    bh = [d * bc[0], d * bc[1], d * bc[2], tc * so * (1 - so)]
    beta = torch.stack([torch.stack(bh, dim=-2), torch.stack(bc, dim=-2)], dim=1)  # (B, 2, 4, N)
    zero = torch.zeros_like(sf)
    alpha = torch.stack([torch.stack([zero, d * sf], dim=1), torch.stack([zero, sf], dim=1)], dim=1)
    return Terms(beta, alpha, None, d)                          # α (B, o=2, p=2, N)


def _lstm_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    return _lstm_terms_from_gates(lstm_gates(p, x, s), split_state(s)[1])


def _peephole_terms(p: Params, x: torch.Tensor, s: torch.Tensor):
    return _lstm_terms_from_gates(peephole_gates(p, x, s), split_state(s)[1])


def _gate_blocks(name: str, G: int) -> Callable[[Params, int], torch.Tensor]:
    return lambda p, N: p[name].reshape(G, N, N)


def _peephole_mats(p: Params, N: int) -> torch.Tensor:
    return torch.cat([p["weight_hh"].reshape(4, N, N), p["weight_ch"].reshape(4, N, N)], dim=-1)


#: Each built-in cell's closed form (NOTE [Closed-form engine]), set as its ``Cell.jacobian``.
RNN_FORM = ClosedForm(_rnn_terms, _gate_blocks("weight_hh", 1))
RNN_RELU_FORM = ClosedForm(_rnn_relu_terms, _gate_blocks("weight_hh", 1))
LSTM_FORM = ClosedForm(_lstm_terms, _gate_blocks("weight_hh", 4), chain=(3,))
PEEPHOLE_LSTM_FORM = ClosedForm(_peephole_terms, _peephole_mats, chain=(3,))
GRU_FORM = ClosedForm(_gru_terms, _gate_blocks("weight_hh", 3))
GRU_CHO_FORM = ClosedForm(_gru_cho_terms, _gate_blocks("weight_hh", 3), reset=(2, 0))
