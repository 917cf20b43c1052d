r"""The engine of the built-in cells' closed-form step Jacobians (NOTE [Closed-form engine]).

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, G = gates. Einsum
letters as in ``jacobians.py``, plus ``o``/``p`` for the state block of an output/input entry (h
or c; S = state_factor · N). Each built-in cell's terms (β, α, ρ) and matrices M are defined beside
its step in ``_cell_math.py``; a :class:`ClosedForm` bundles them and is the cell's ``jacobian``.

Two assemblies of the same matrices:

* :func:`assemble` builds J with ordinary autograd-able torch operations (gate by gate, in
  place on a zero tensor): differentiable with respect to the params and the states, and usable
  under ``torch.func`` transforms (the χ estimators differentiate through it).
* :func:`assemble_into` writes J into a given output, each entry once, without a graph
  (NOTE [One pass over J]); the Jacobian engines use it whenever no graph is needed
  (:func:`graph_free`).

Both agree with the row-by-row reference to rounding (the tests check 1e-10 in float64).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch

Params = Mapping[str, torch.Tensor]

# NOTE [Closed-form engine]
# Every built-in cell's Jacobian is a sum of gate terms plus a diagonal part:
#
#     J[b, o, n, s] = Σ_g β[b, o, g, n] · M[g, n, s]          einsum "bogn,gns->bons"
#                   + Σ_p α[b, o, p, n] · [s == p·N + n]       (diagonal blocks, o/p in {h, c})
#
# where M[g] = ∂(preactivation of gate g)/∂s_{t-1} is a slice of the recurrent weights (N, C) that
# touches the first C state entries, and β[b, o, g, n] = ∂(state block o, unit n)/∂(preactivation
# of gate g, unit n) is elementwise. A cell therefore only defines β, α (its "terms") and M; the
# engine below is shared. Per cell, with a = preactivations, σ the logistic, ' derivatives:
#
#   rnn / rnn_relu  h' = φ(a):        β_h = φ'(a);  M_h = W_hh;  no α.  relu' = [a > 0] (torch's).
#   gru             h' = (1-z)n + zh, n = tanh(a_n + r·(W_hn h + b_hn)):
#                   β_r = (1-z)(1-n²)(W_hn h + b_hn) r(1-r), β_z = (h-n) z(1-z),
#                   β_n = (1-z)(1-n²) r;  M = W_hh split in (r, z, n);  α_hh = z.
#   lstm            c' = σ(f)c + σ(i)tanh(g), h' = σ(o)tanh(c'), with d = σ(o)(1 - tanh²c'):
#                   β_c = (tanh g·σ'(i), c·σ'(f), σ(i)(1 - tanh²g), 0),
#                   β_h = (d β_c,i, d β_c,f, d β_c,g, tanh c'·σ'(o));
#                   α_cc = σ(f), α_hc = d σ(f);  M = W_hh split in (i, f, g, o), C = N (h only).
#   peephole_lstm   as lstm, with M = [W_hh | W_ch] per gate, C = 2N (the gates see c too).
#   gru_cho         h' = (1-z)n + zh, n = tanh(a_n), a_n = W_in x + b_in + W_hn (r ⊙ h) + b_hn
#                   (NOTE [GRU with the reset before the product] in _cell_math.py). See below.
#
# The reset before the product (gru_cho) is the one term that is not "elementwise × shared
# matrix". By the chain rule, with r = σ(a_r), z = σ(a_z), u = r ⊙ h:
#
#     ∂h'/∂h = diag(z)                                   (h' = ... + z h, h held)
#            + diag((h - n) z(1-z)) W_hz                 (through z: ∂h'/∂z = h - n)
#            + diag((1-z)(1-n²)) W_hn ∂u/∂h              (through n)
#     ∂u/∂h  = diag(r) + diag(h) ∂r/∂h = diag(r) + diag(h r(1-r)) W_hr.
#
# So α_hh = z, β_z = (h - n) z(1-z), β_n = (1-z)(1-n²), and gate n's matrix is the PER-EXAMPLE
# product M_n A_b with A_b = diag(ρ_1) + diag(ρ_2) M_r, ρ = (r, h r(1-r)) (both (B, N)); r has no
# term of its own (β_r = 0): it acts only through A_b. A cell declares this with
# ``reset=(n, r)`` (gate indices) and returns ρ as the third item of its terms. The engine forms
# M_n A_b = M_n diag(ρ_1) + (M_n diag(ρ_2)) M_r one slice of rows (one step) at a time: one GEMM
# of (B·N, N) × (N, N) per step, so the chunk invariance below holds, and the temporary is one
# step's (B, N, N), the size of that step's Jacobians. Cost: B·N³ per step, the price of the
# matrix product in the Jacobian itself (jacrev pays the same order). Requires S = C = N.
#
# With a graph (assemble), the contraction is accumulated gate by gate in place (G ≤ 4 passes;
# without one, NOTE [One pass over J]) rather than with
# torch.einsum: einsum returns an n-major layout, and making it (B, S, S)-contiguous would copy the
# whole chunk, doubling the peak memory that the streamed spectra bound. Everything is ordinary
# autograd-able torch code, so the closed form is differentiable with respect to params and s.


class Terms(NamedTuple):
    """A closed form's elementwise terms at one step (NOTE [Closed-form engine]).

    beta (B, O, G, N); alpha (B, O, O, N) or None; rho (B, 2, N) or None (the reset before the
    product); scale (B, N) or None: the factor of a chained form (NOTE [Chained rows]).
    """

    beta: torch.Tensor
    alpha: torch.Tensor | None = None
    rho: torch.Tensor | None = None
    scale: torch.Tensor | None = None


@dataclass(frozen=True)
class ClosedForm:
    r"""A built-in cell's derivative definition (NOTE [Closed-form engine]); a
    :attr:`~spectrumkit.cells.Cell.jacobian`: called as ``form(params, x (B, D), s (B, S))`` it
    returns J (B, S, S), differentiable (:func:`assemble`).

    terms(params, x (B, D), s (B, S)) -> :class:`Terms`; mats(params, N) -> M (G, N, C), acting on
    the first C entries of s. reset: (gate n, gate r) when gate n's matrix acts on r ⊙ h (then
    ρ = (r, h r(1-r))), else None. chain: the gates of output block 0 of its own when block 0's
    rows are diag(scale) times block 1's plus those gates' terms (NOTE [Chained rows]), else None.
    """

    terms: Callable[[Params, torch.Tensor, torch.Tensor], Terms]
    mats: Callable[[Params, int], torch.Tensor]
    reset: tuple[int, int] | None = None
    chain: tuple[int, ...] | None = None

    def __call__(self, params: Params, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return assemble(self, params, x, s, "full")


def assemble(form: ClosedForm, params: Params, x: torch.Tensor, s: torch.Tensor, block: str,
             parts: int = 1) -> torch.Tensor:
    """Trusted: x (K, D), s (K, S) -> J (K, S, S), or (K, N, N) for block "hh".

    The terms (which contain the matmuls of the gate preactivations) are computed on ``parts``
    equal slices of the rows, the assembly on all rows at once: with one slice per step the result
    is bit-identical for every chunking (NOTE [Chunk invariance]).
    """
    pieces = [form.terms(params, xi, si) for xi, si in zip(x.chunk(parts), s.chunk(parts))]
    beta = torch.cat([t.beta for t in pieces])
    alphas = [t.alpha for t in pieces if t.alpha is not None]  # on every slice or none
    alpha = torch.cat(alphas) if alphas else None
    K, Bo, G, N = beta.shape  # Bo: output state blocks (h, or h and c)
    M = form.mats(params, N)
    if block == "hh":
        beta, M, Bo = beta[:, :1], M[..., :N], 1
        alpha = None if alpha is None else alpha[:, :1, :1]
    S, C = Bo * N, M.shape[-1]
    J = beta.new_zeros(K, Bo, N, S)
    Jc = J[..., :C]
    skip = () if form.reset is None else form.reset
    for g in range(G):                                          # "bogn,gns->bons", in place
        if g not in skip:
            Jc.addcmul_(beta[:, :, g, :, None], M[g])
    if form.reset is not None:                  # gate n acts on r ⊙ h: its matrix is M_n A_b
        gn, gr = form.reset
        start = 0
        rhos = [t.rho for t in pieces if t.rho is not None]
        for rho in rhos:                        # one slice of rows (one step) at a time
            k = rho.shape[0]
            MA = M[gn] * rho[:, 0, None, :]                     # M_n diag(ρ₁)       (k, N, C)
            MA += (M[gn] * rho[:, 1, None, :]) @ M[gr]          # (M_n diag(ρ₂)) M_r
            Jc[start: start + k].addcmul_(beta[start: start + k, :, gn, :, None], MA[:, None])
            start += k
    if alpha is not None:                                   # J[b, o, n, p·N + n] += α[b, o, p, n]
        J.view(K, Bo, N, Bo, N).diagonal(dim1=2, dim2=4).add_(alpha)
    return J.view(K, S, S)


# --------------------------------------------------------------------------------------------------
# One pass over J: the assembly without a graph
# --------------------------------------------------------------------------------------------------
# NOTE [One pass over J]
# A step Jacobian costs O(G) multiply-adds per entry, so its floor is writing the B·S² entries once
# to memory. Three costs sit on top of that floor, and the graph-free assembly avoids them:
#
# * Fresh pages. A new output is memory the process never touched; the kernel zeroes each page at
#   its first write (NOTE [Fresh pages] in _output_cache.py). If the first writes are spread over
#   the whole output (a product batched over the rows n writes row n of EVERY example), every page
#   is zeroed long before the rest of it is written, and J crosses the memory bus twice. A freed
#   output's memory is reused where one fits (NOTE [Reused outputs]): no page is zeroed at all.
# * Passes. The sum Σ_g diag(β_g) M_g + diag(α) taken gate by gate reads and writes J G + 1 times.
# * Terms that are zero. An LSTM's c rows have no output-gate term, and its h rows are the c rows
#   scaled (NOTE [Chained rows]).
#
# So the output is filled one block of examples at a time, a block being about the size of the
# L2 cache (_BLOCK_BYTES): its pages are faulted in (when fresh) and written while they are still
# in cache, and the G + 1 elementwise passes over the block run in cache too:
#
#     J[b, o, n, p·N + j] = β[b, o, g₁, n] M[g₁, n, p·N + j]              (torch.mul into J)
#                         + Σ_{g > g₁} β[b, o, g, n] M[g, n, p·N + j]     (addcmul_, in place)
#                         + α[b, o, p, n] · [j == n]                      (the diagonal, add_)
#
# for the input blocks p that a gate reaches (p·N < C). A block no gate reaches (an LSTM's columns
# from c, C = N) holds only its diagonal: in a zero output (a fresh one) only the diagonal is
# written. An output that holds old values (a reused or a given one) and whose rows fall in two
# blocks (h and c) has each block of examples zero-filled first, whole: the writes to one block of
# columns are strided (half of each row), and strided writes to memory not in cache cost several
# times contiguous ones. Measured on one thread, (64, 800, 800) float32: a contiguous fill of all
# of it 6.6 ms, a strided fill of half of it 9.7 ms; an LSTM's passes in a reused output 1.64x a
# copy with the strided fill of the c columns, 1.18x with the whole fill first; a peephole LSTM's
# J (every block reached), 2.72x without the fill and 2.45x with it. From memory's point of view
# each entry still reaches memory once (the fill's writes are overwritten in cache); the operands
# M (G, N, C) are read from cache.
#
# Every op is elementwise, with no reduction, so the values do not depend on the block size (nor
# on the chunk, NOTE [Chunk invariance]). Without a chain they equal the gate-by-gate assembly of
# assemble bit for bit (0 + a = a, then the same additions in the same order); a chained form
# multiplies in another order, so its h rows agree to rounding.
#
# NOTE [Chained rows]
# An LSTM's h' = σ(o) tanh(c') depends on s_{t-1} through c' and through the output gate only:
#
#     ∂h'/∂s = diag(d) ∂c'/∂s + diag(tanh c' σ'(o)) [M_o | 0],     d = σ(o)(1 - tanh² c'),
#
# and ∂c'/∂s has no output-gate term. So its β and α obey β[:, h, g] = d β[:, c, g] for the gates
# i, f, g, β[:, c, o] = 0 and α[:, h] = d α[:, c]. A form that declares ``chain`` (the gates of
# block 0 of its own; LSTM: (o,)) and returns the factor d as ``Terms.scale`` is assembled as
#
#     J_c = Σ_{g ∉ chain} diag(β_c,g) M_g + diag(α_c)       (G - 1 passes over the c rows)
#     J_h = diag(d) J_c + Σ_{g ∈ chain} diag(β_h,g) M_g      (2 passes over the h rows)
#
# instead of G + 1 passes over both: for an LSTM, 3 passes over the c rows and 2 over the h rows,
# not 4 over each (in both blocks of columns for the peephole LSTM, whose gates see c). The graph
# path (assemble) keeps the plain sum; the tests compare both, and check the relations above on
# the built-in terms.
#
# gru_cho's gate n acts through the per-example matrix M_n A_b (NOTE [Closed-form engine]): per
# block, P = diag(β_n) M_n (a block-sized temporary), J += P diag(ρ₁), then J += (P diag(ρ₂)) M_r,
# one GEMM of (block·N, N) × (N, N): B·N³ in all, the floor of that cell. The block depends on S
# and the dtype only, so the GEMM's rows, and its rounding, are the same for every chunk.

def graph_free(params: Params, x: torch.Tensor, s: torch.Tensor) -> bool:
    """Whether J may be assembled without autograd: nothing requires grad (or grad mode is off)
    and no ``torch.func`` transform is active (its wrapped tensors need the functional ops)."""
    if torch._C._are_functorch_transforms_active():
        return False
    if not torch.is_grad_enabled():
        return True
    return not (x.requires_grad or s.requires_grad
                or any(t.requires_grad for t in params.values()))


#: Bytes of output filled per block of examples (NOTE [One pass over J]): about one L2 cache.
_BLOCK_BYTES = 2 * 2**20


def assemble_step_into(form: ClosedForm, M: torch.Tensor, terms: Terms, out: torch.Tensor,
                       zeroed: bool) -> None:
    """Trusted: one step's terms (β (B, Bo, G, N), ...) and M (G, N, C) -> J written into ``out``
    (B, Bo·N, Bo·N), contiguous (NOTE [One pass over J]).

    zeroed: ``out`` is zero outside the diagonals of the blocks no gate reaches (a fresh output,
    NOTE [Fresh pages] in ``_output_cache.py``, and every later state of it).
    """
    beta, alpha, rho, scale = terms
    B, Bo, G, N = beta.shape
    C = M.shape[-1]
    gates = [g for g in range(G) if form.reset is None or g not in form.reset]
    own = list(form.chain) if form.chain is not None and scale is not None and Bo == 2 else []
    through = [g for g in gates if g not in own]                    # the c rows' gates
    # Views over all B examples, taken once; the loop below slices examples [b0:b1] off them.
    # region[p]: J's columns of input block p, (B, Bo, N, N); bcol[g]: β (B, Bo, G, N, 1)[:, :, g].
    blocks = out.view(B, Bo, N, Bo, N)
    region = [blocks[:, :, :, p] for p in range(Bo)]
    diagonal = [r.diagonal(dim1=2, dim2=3) for r in region]        # (B, Bo, N)
    bcol = beta.unsqueeze(-1).unbind(2)
    cols = [M[:, :, p * N: (p + 1) * N].unbind(0) for p in range(Bo)]   # (N, N) per gate
    reached = [p * N < C and bool(gates) for p in range(Bo)]
    per_example = out[0].numel() * out.element_size()
    step = max(1, _BLOCK_BYTES // per_example)
    # An output with old values whose rows fall in blocks (h and c) is zero-filled whole, one
    # block of examples at a time (NOTE [One pass over J]).
    prefill = not zeroed and (Bo > 1 or not all(reached))
    for b0 in range(0, B, step):
        b1 = min(B, b0 + step)
        if prefill:
            out[b0:b1].zero_()
        for p in range(Bo):
            blk, colp = region[p][b0:b1], cols[p]                    # (block, Bo, N, N)
            if reached[p] and own and scale is not None:            # NOTE [Chained rows]
                Jh, Jc = blk.unbind(1)
                torch.mul(bcol[through[0]][b0:b1, 1], colp[through[0]], out=Jc)
                for g in through[1:]:
                    Jc.addcmul_(bcol[g][b0:b1, 1], colp[g])
                if alpha is not None:
                    Jc.diagonal(dim1=1, dim2=2).add_(alpha[b0:b1, 1, p])
                torch.mul(scale[b0:b1, :, None], Jc, out=Jh)
                for g in own:
                    Jh.addcmul_(bcol[g][b0:b1, 0], colp[g])
                continue
            if reached[p]:
                torch.mul(bcol[gates[0]][b0:b1], colp[gates[0]], out=blk)
                for g in gates[1:]:
                    blk.addcmul_(bcol[g][b0:b1], colp[g])
            elif not (zeroed or prefill):
                blk.zero_()
            if alpha is not None:
                if reached[p]:
                    diagonal[p][b0:b1].add_(alpha[b0:b1, :, p])
                else:
                    diagonal[p][b0:b1].copy_(alpha[b0:b1, :, p])
        if form.reset is not None and rho is not None:              # gate n acts on r ⊙ h
            gn, gr = form.reset
            J = out[b0:b1]
            P = M[gn] * beta[b0:b1, 0, gn, :, None]                  # diag(β_n) M_n
            J.addcmul_(P, rho[b0:b1, 0, None, :])                    # … diag(ρ₁)
            P.mul_(rho[b0:b1, 1, None, :])                           # … diag(ρ₂)
            J.view(-1, N).addmm_(P.view(-1, N), M[gr])               # … M_r


def assemble_into(form: ClosedForm, params: Params, x: torch.Tensor, s: torch.Tensor, block: str,
                  out: torch.Tensor, zeroed: bool = False) -> torch.Tensor:
    """Trusted, without a graph: x (c, B, D), s (c, B, S) -> ``out`` (c, B, size, size) filled.

    ``out`` must be contiguous; size is S, or N for block "hh"; ``zeroed`` as in
    :func:`assemble_step_into`. Terms and products run one step at a time (NOTE [Chunk
    invariance]); each entry of ``out`` reaches memory once (NOTE [One pass over J]).
    """
    M = None
    with torch.no_grad():
        for i in range(x.shape[0]):
            terms = form.terms(params, x[i], s[i])
            N = terms.beta.shape[-1]
            if M is None:
                M = form.mats(params, N)
                if block == "hh":
                    M = M[..., :N]
            if block == "hh":
                alpha = terms.alpha
                terms = Terms(terms.beta[:, :1], None if alpha is None else alpha[:, :1, :1],
                              terms.rho)
            assemble_step_into(form, M, terms, out[i], zeroed)
    return out
