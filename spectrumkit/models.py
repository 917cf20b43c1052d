r"""Models built around one recurrent cell: a sequence classifier and a language model.

Legend: T = steps, B = batch, D = input size, N = hidden size, S = state size, V = vocabulary,
E = embedding size, C = classes.

Only the cell is pruned. Both models keep the cell's parameters in ``model.rnn`` (a
``ParameterDict`` keyed by the cell's tensor names) and expose the pruned set through
:meth:`prunable`; the embedding, the head and (by default) the biases stay dense.

NOTE [Batch-first models, time-major cells]
Models take batch-first inputs (B, T, D) / (B, T) like data loaders produce; inside they transpose
to the time-major layout (T, B, D) that :func:`~spectrumkit.unroll` and every Jacobian
routine use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from ._unroll import unroll_states
from .cells import Cell, get
from .errors import check_positive_int, fail
from .init import DRAW_DTYPE, init_params, make_generator
from .protocols import RecurrentModel

__all__ = ["LanguageModel", "SequenceClassifier", "log_uniform_probs", "log_uniform_sample",
           "sampled_softmax_loss"]


#: One batch of every model here: ``(xs (B, T, D), ys (B,))`` or
#: ``(inputs (B, T), targets (B, T))``.
Batch = tuple[torch.Tensor, torch.Tensor]


# NOTE [No global RNG in models]
# torch.nn.Linear / Embedding draw their default init from the global RNG in __init__. Every layer
# here is built with torch.nn.utils.skip_init (no draw at all) and then filled from the model's own
# generator, so constructing a model never advances the global RNG.


def _xavier_linear(in_features: int, out_features: int, g: torch.Generator, dtype: torch.dtype,
                   device: torch.device | str | None) -> nn.Linear:
    """A Linear layer with a Xavier-normal weight drawn from ``g`` and a zero bias."""
    layer = skip_init(nn.Linear, in_features, out_features, dtype=dtype, device=device or "cpu")
    std = (2.0 / (in_features + out_features)) ** 0.5
    with torch.no_grad():
        w = torch.randn(out_features, in_features, generator=g, dtype=DRAW_DTYPE) * std
        layer.weight.copy_(w.to(dtype))  # NOTE [One draw]
        layer.bias.zero_()
    return layer


# --------------------------------------------------------------------------------------------------
# Sampled softmax
# --------------------------------------------------------------------------------------------------

# NOTE [Sampled softmax]
# Training a language model over V = 100,000 words with a full softmax costs a (B·T, N) × (N, V)
# product per step. The sampled softmax (Jean et al. 2015, "On using very large target vocabulary";
# the form of TensorFlow's sampled_softmax_loss) scores only the true word and S candidates drawn
# once per step, shared by every position of the batch:
#   * candidates are drawn i.i.d. (with replacement) from the log-uniform (Zipfian) distribution
#     over frequency-sorted ids, Q(k) = (log(k+2) − log(k+1)) / log(V+1), k = 0..V−1 (our
#     vocabularies are most frequent first), by inverting its CDF: k = ⌊exp(u·log(V+1))⌋ − 1 with
#     u ~ U[0, 1) from an explicit generator;
#   * the "log Q correction": every logit, true and sampled, has log(S·Q(k)) subtracted, the log of
#     k's expected count among the S draws, which makes the sampled loss's gradient approach the
#     full softmax's (measured in tests/test_sampled_softmax.py);
#   * accidental hits are removed: a candidate equal to the position's true word is masked to −inf,
#     so the true word is never also a negative. With the whole vocabulary as candidates and no
#     correction this gives exactly the full softmax.
# Evaluation always uses the full softmax: perplexities never come from a sampled loss.


def log_uniform_probs(V: int, *, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> torch.Tensor:
    r"""The log-uniform (Zipfian) distribution over ids 0..V−1: Q(k) = log((k+2)/(k+1)) / log(V+1).

    It sums to 1 (the logs telescope to log(V+1)). NOTE [Sampled softmax].

    >>> [round(float(q), 4) for q in log_uniform_probs(3)]
    [0.5, 0.2925, 0.2075]
    """
    check_positive_int("log_uniform_probs", "V", V)
    k = torch.arange(V, dtype=torch.float64, device=device)
    return (torch.log1p(1.0 / (k + 1.0)) / math.log(V + 1.0)).to(dtype)


def log_uniform_sample(V: int, S: int, *, generator: torch.Generator) -> torch.Tensor:
    r"""S i.i.d. ids (S,) long from :func:`log_uniform_probs`, on the generator's device.

    Inverse CDF: k = ⌊exp(u·log(V+1))⌋ − 1 with u ~ U[0, 1) (float64), since
    P(k+1 ≤ exp(u·log(V+1)) < k+2) = Q(k).
    """
    fn = "log_uniform_sample"
    check_positive_int(fn, "V", V)
    check_positive_int(fn, "S", S)
    if not isinstance(generator, torch.Generator):
        raise fail(fn, "generator to be a torch.Generator", type(generator).__name__)
    u = torch.rand(S, generator=generator, dtype=torch.float64, device=generator.device)
    k = torch.floor(torch.exp(u * math.log(V + 1.0))).long() - 1
    return k.clamp_(0, V - 1)


def sampled_softmax_loss(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, samples: torch.Tensor,
                         log_expected: torch.Tensor | None = None) -> torch.Tensor:
    r"""Mean sampled-softmax cross-entropy (NOTE [Sampled softmax]).

    With z = hidden · weightᵀ + bias and c = ``log_expected`` (0 when None), position i scores
    the logits [z_{i,y_i} − c_{y_i}, z_{i,s_1} − c_{s_1}, ..., z_{i,s_S} − c_{s_S}], a candidate
    s_j = y_i masked to −inf (accidental hit), and the loss is the mean of −log softmax(...)₀.

    Args:
        hidden: (M, N) with M = B·T. weight: (V, N) decoder weight. bias: (V,) or None.
        targets: (M,) ids in [0, V). samples: (S,) candidate ids. log_expected: (V,) log of each
            id's expected count among the candidates, log(S·Q(k)) for log-uniform draws, or None
            for no correction.
    """
    true_logits = (hidden * weight[targets]).sum(-1)  # (M,)
    cand = hidden @ weight[samples].T  # (M, S)
    if bias is not None:
        true_logits = true_logits + bias[targets]
        cand = cand + bias[samples]
    if log_expected is not None:
        true_logits = true_logits - log_expected[targets]
        cand = cand - log_expected[samples]
    cand = cand.masked_fill(samples[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([true_logits[:, None], cand], dim=1)
    return (torch.logsumexp(logits, dim=1) - true_logits).mean()


class _RecurrentCore(nn.Module):
    """Shared parts: the cell, its parameters, the pruned-set view and the time-major unroll."""

    def __init__(self, cell: str | Cell, input_size: int, hidden_size: int, init: str | Mapping,
                 g: torch.Generator, bias: str | None, dtype: torch.dtype,
                 device: torch.device | str | None) -> None:
        super().__init__()
        self.cell = get(cell)
        self.input_size = input_size
        self.hidden_size = hidden_size
        params = init_params(self.cell, input_size, hidden_size, init, generator=g, bias=bias,
                             dtype=dtype, device=device)
        self.rnn = nn.ParameterDict({k: nn.Parameter(v) for k, v in params.items()})

    @property
    def state_size(self) -> int:
        """S, the length of the cell's flat state at N = ``hidden_size``."""
        return self.cell.state_size(self.hidden_size)

    def cell_params(self) -> dict[str, torch.Tensor]:
        """All cell parameters ``{name: Parameter}`` (the dict the cell's ``step`` takes)."""
        return dict(self.rnn.items())

    def _check_xs(self, fn: str, batch: object) -> tuple[torch.Tensor, object]:
        """Validate the ``(xs (B, T, D), ys)`` pair's form and ``xs``; return both."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise fail(fn, "a batch (xs, ys)", type(batch).__name__)
        xs, ys = batch
        if not isinstance(xs, torch.Tensor) or xs.dim() != 3 or xs.shape[-1] != self.input_size:
            raise fail(fn, f"xs of shape (B, T, D={self.input_size})",
                       f"shape {tuple(getattr(xs, 'shape', ()))}")
        if not xs.is_floating_point():
            raise fail(fn, "floating-point xs", xs.dtype)
        return xs, ys

    def prunable(self, include_bias: bool = False) -> dict[str, nn.Parameter]:
        """The pruned set: the cell's weights (and biases if ``include_bias``), by tensor name."""
        return {k: v for k, v in self.rnn.items() if include_bias or not self.cell.is_bias(k)}

    def states(self, xs_time_major: torch.Tensor, s0: torch.Tensor | None = None) -> torch.Tensor:
        """Unroll the cell: (T, B, D) -> (T+1, B, S), zero initial state unless ``s0`` (B, S)."""
        if s0 is None:
            s0 = xs_time_major.new_zeros(xs_time_major.shape[1], self.state_size)
        return unroll_states(self.cell, self.cell_params(), xs_time_major, s0)

    def cell_inputs(self, batch: Batch) -> torch.Tensor:
        """The cell's time-major inputs for a (validated) batch: (T, B, D).

        The default reads float inputs ``batch[0]`` of shape (B, T, D); models that transform their
        inputs before the cell (an embedding) override it. Pruning scores use it to run the cell on
        the batch without knowing the model (``spectrumkit.scores``).
        """
        return batch[0].transpose(0, 1)


class _ReadoutModel(_RecurrentCore):
    """A cell followed by a linear head of ``width`` outputs on the final h.

    The common part of :class:`SequenceClassifier` and :class:`SequenceRegressor`: the argument
    checks, the generator, then the cell's draws and the head's (Xavier-normal weight, zero bias),
    in that order. ``width_arg`` names the caller's argument that sets ``width`` (checked as a
    positive integer), or is None when the model fixes it.
    """

    def __init__(self, fn: str, cell: str | Cell, input_size: int, hidden_size: int, width: int,
                 width_arg: str | None, init: str | Mapping, generator: torch.Generator | None,
                 seed: int | None, bias: str | None, dtype: torch.dtype,
                 device: torch.device | str | None) -> None:
        check_positive_int(fn, "input_size", input_size)
        check_positive_int(fn, "hidden_size", hidden_size)
        if width_arg is not None:
            check_positive_int(fn, width_arg, width)
        g = make_generator(generator, seed, fn)
        super().__init__(cell, input_size, hidden_size, init, g, bias, dtype, device)
        self.head = _xavier_linear(hidden_size, width, g, dtype, device)

    def _head_of_last(self, xs: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> the head applied to the final h: (B, width)."""
        s = self.states(xs.transpose(0, 1))
        return self.head(self.cell.output(s[-1]))


class SequenceClassifier(_ReadoutModel):
    r"""A cell followed by a linear head on the final h: logits = W h_T + b.

    Args:
        cell: built-in name or Cell. input_size: D. hidden_size: N. num_classes: C.
        init: initialization scheme of the cell (see :mod:`spectrumkit.init`).
        generator / seed: exactly one; draws the cell and then the head (Xavier-normal weight,
            zero bias), in that order.
        bias: bias scheme for the cell (zero by default).

    ``forward(xs)`` takes xs of shape (B, T, D) and returns logits (B, C).
    """

    def __init__(self, cell: str | Cell, input_size: int, hidden_size: int, num_classes: int, *,
                 init: str | Mapping = "glorot", generator: torch.Generator | None = None,
                 seed: int | None = None, bias: str | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
                 ) -> None:
        super().__init__("SequenceClassifier", cell, input_size, hidden_size, num_classes,
                         "num_classes", init, generator, seed, bias, dtype, device)
        self.num_classes = num_classes

    def check_batch(self, fn: str, batch: Any) -> None:
        """Validate ``(xs (B, T, D), ys (B,))`` with labels in [0, C)."""
        xs, ys = self._check_xs(fn, batch)
        if (not isinstance(ys, torch.Tensor) or ys.shape != (xs.shape[0],)
                or ys.is_floating_point()):
            raise fail(fn, f"integer ys of shape ({xs.shape[0]},)",
                       f"{getattr(ys, 'dtype', type(ys).__name__)} of shape "
                       f"{tuple(getattr(ys, 'shape', ()))}")
        if ys.numel() and (int(ys.min()) < 0 or int(ys.max()) >= self.num_classes):
            raise fail(fn, f"labels in [0, {self.num_classes})",
                       f"range [{int(ys.min())}, {int(ys.max())}]")

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> logits (B, C)."""
        return self._head_of_last(xs)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean cross-entropy of the batch ``(xs (B, T, D), ys (B,))``."""
        xs, ys = batch
        return F.cross_entropy(self(xs), ys)


class LanguageModel(_RecurrentCore):
    r"""Embedding → cell → linear decoder over the vocabulary, next-token prediction.

    Args:
        cell: built-in name or Cell. vocab_size: V. embed_size: E (the cell's D). hidden_size: N.
        freeze_embedding: keep the N(0, 1)-initialized embedding fixed (the paper's setting).
        init, generator / seed, bias: as for :class:`SequenceClassifier`.
        softmax_samples: None for the full softmax (the default), or S with 0 < S < V for a
            sampled softmax with S log-uniform candidates per step in :meth:`train_loss` (NOTE
            [Sampled softmax]). ``forward``, :meth:`loss` and every evaluation stay full.

    ``forward(tokens, s0=None)`` takes tokens (B, T) and returns ``(logits (B, T, V), s_T (B, S))``
    so that truncated BPTT can carry the state across batches.
    """

    def __init__(self, cell: str | Cell, vocab_size: int, embed_size: int, hidden_size: int,
                 freeze_embedding: bool = True, *, init: str | Mapping = "glorot",
                 generator: torch.Generator | None = None, seed: int | None = None,
                 bias: str | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, softmax_samples: int | None = None
                 ) -> None:
        fn = "LanguageModel"
        check_positive_int(fn, "vocab_size", vocab_size)
        if softmax_samples is not None and (
                isinstance(softmax_samples, bool) or not isinstance(softmax_samples, int)
                or not 0 < softmax_samples < vocab_size):
            raise fail(fn, f"softmax_samples in [1, V - 1] = [1, {vocab_size - 1}] or None "
                       "(full softmax)", repr(softmax_samples))
        check_positive_int(fn, "embed_size", embed_size)
        check_positive_int(fn, "hidden_size", hidden_size)
        g = make_generator(generator, seed, fn)
        super().__init__(cell, embed_size, hidden_size, init, g, bias, dtype, device)
        self.vocab_size = vocab_size
        self.embedding = skip_init(nn.Embedding, vocab_size, embed_size, dtype=dtype,
                                   device=device or "cpu")
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(vocab_size, embed_size, generator=g,
                                                    dtype=DRAW_DTYPE).to(dtype))  # NOTE [One draw]
        self.decoder = _xavier_linear(hidden_size, vocab_size, g, dtype, device)
        self.embedding.weight.requires_grad_(not freeze_embedding)
        self.softmax_samples = softmax_samples

    def check_batch(self, fn: str, batch: Any) -> None:
        """Validate ``(inputs (B, T), targets (B, T))`` of token ids in [0, V)."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise fail(fn, "a batch (inputs, targets)", type(batch).__name__)
        for name, t in zip(("inputs", "targets"), batch):
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.is_floating_point():
                raise fail(fn, f"integer {name} of shape (B, T)",
                           f"shape {tuple(getattr(t, 'shape', ()))}")
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
                raise fail(fn, f"{name} token ids in [0, {self.vocab_size})",
                           f"range [{int(t.min())}, {int(t.max())}]")
        if batch[0].shape != batch[1].shape:
            raise fail(fn, "inputs and targets of one shape",
                       f"{tuple(batch[0].shape)} and {tuple(batch[1].shape)}")

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (T, B, E) time-major embeddings."""
        return self.embedding(tokens).transpose(0, 1)

    def cell_inputs(self, batch: Batch) -> torch.Tensor:
        """The cell's inputs for a batch ``(inputs (B, T), targets)``: embeddings (T, B, E)."""
        return self.embed(batch[0])

    def forward(self, tokens: torch.Tensor, s0: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) -> (logits (B, T, V), final state (B, S))."""
        s = self.states(self.embed(tokens), s0)
        logits = self.decoder(self.cell.output(s[1:])).transpose(0, 1)
        return logits, s[-1]

    def loss(self, batch: Batch, s0: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy of ``(inputs (B, T), targets (B, T))``."""
        inputs, targets = batch
        logits, _ = self(inputs, s0)
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))

    def train_loss(self, batch: Batch, s0: torch.Tensor | None = None,
                   *, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The training loss of ``(inputs (B, T), targets (B, T))`` and the final state (B, S).

        Full softmax: as :meth:`loss`. Sampled (``softmax_samples`` = S): S candidates drawn by
        :func:`log_uniform_sample` from ``generator`` (required; a CPU generator serves any
        device), scored by :func:`sampled_softmax_loss` with the log(S·Q) correction.
        """
        inputs, targets = batch
        if self.softmax_samples is None:
            logits, s_T = self(inputs, s0)
            return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1)), s_T
        if not isinstance(generator, torch.Generator):
            raise fail("LanguageModel.train_loss", "a torch.Generator for the sampled softmax",
                       type(generator).__name__)
        s = self.states(self.embed(inputs), s0)
        h = self.cell.output(s[1:]).transpose(0, 1).reshape(-1, self.hidden_size)  # (B·T, N)
        S, V = self.softmax_samples, self.vocab_size
        w = self.decoder.weight
        samples = log_uniform_sample(V, S, generator=generator).to(w.device)
        log_expected = (math.log(S) + torch.log(log_uniform_probs(V, device=w.device))).to(w.dtype)
        loss = sampled_softmax_loss(h, w, self.decoder.bias, targets.reshape(-1), samples,
                                    log_expected)
        return loss, s[-1]


class SequenceRegressor(_ReadoutModel):
    r"""A cell followed by a linear head on the final h giving one real value: ŷ = w·h_T + b.

    For regression tasks such as the adding problem; the loss is the mean squared error.

    Args:
        cell: built-in name or Cell. input_size: D. hidden_size: N.
        init: initialization scheme of the cell (see :mod:`spectrumkit.init`).
        generator / seed: exactly one; draws the cell and then the head (Xavier-normal weight,
            zero bias), in that order, like :class:`SequenceClassifier` with C = 1.
        bias: bias scheme for the cell (zero by default).

    ``forward(xs)`` takes xs of shape (B, T, D) and returns predictions (B,).
    """

    def __init__(self, cell: str | Cell, input_size: int, hidden_size: int, *,
                 init: str | Mapping = "glorot", generator: torch.Generator | None = None,
                 seed: int | None = None, bias: str | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
                 ) -> None:
        super().__init__("SequenceRegressor", cell, input_size, hidden_size, 1, None, init,
                         generator, seed, bias, dtype, device)

    def check_batch(self, fn: str, batch: Any) -> None:
        """Validate ``(xs (B, T, D), ys (B,))`` with real, finite targets."""
        xs, ys = self._check_xs(fn, batch)
        if (not isinstance(ys, torch.Tensor) or ys.shape != (xs.shape[0],)
                or not ys.is_floating_point()):
            raise fail(fn, f"floating-point ys of shape ({xs.shape[0]},)",
                       f"{getattr(ys, 'dtype', type(ys).__name__)} of shape "
                       f"{tuple(getattr(ys, 'shape', ()))}")
        if ys.numel() and not bool(torch.isfinite(ys).all()):
            raise fail(fn, "finite ys", f"{int((~torch.isfinite(ys)).sum())} NaN/Inf entries")

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> predictions (B,)."""
        return self._head_of_last(xs).squeeze(-1)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean squared error of the batch ``(xs (B, T, D), ys (B,))``."""
        xs, ys = batch
        return F.mse_loss(self(xs), ys)


__all__ += ["SequenceRegressor"]

#: The model contract, checked by mypy: each model here is a
#: :class:`~spectrumkit.protocols.RecurrentModel`.
_MEETS_CONTRACT: tuple[type[RecurrentModel], ...] = (SequenceClassifier, LanguageModel,
                                                     SequenceRegressor)
