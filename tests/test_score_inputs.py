"""The scores' input checks: what every pruning score refuses before computing anything."""

from __future__ import annotations

import pytest
import torch

from spectrumkit.errors import SpectrumkitError


@pytest.mark.parametrize("B,T", [(0, 5), (4, 0), (0, 0)])
def test_every_score_refuses_an_empty_batch(B, T):
    """An empty batch (B=0 or T=0) would give all-zero scores, and so a mask chosen by position;
    every method refuses it with one line, as jacobian does."""
    from spectrumkit.models import SequenceClassifier
    from spectrumkit.scores import METHODS, compute_scores

    m = SequenceClassifier("gru", 2, 3, 2, seed=0, dtype=torch.float64)
    batch = (torch.ones(B, T, 2, dtype=torch.float64), torch.zeros(B, dtype=torch.long))
    for method in METHODS:
        kw = {"density": 0.5} if method == "synflow" else {}
        with pytest.raises(SpectrumkitError) as e:
            compute_scores(method, m, batch, generator=torch.Generator().manual_seed(0), **kw)
        msg = str(e.value)
        assert msg == (f"compute_scores: expected a non-empty batch (B >= 1 sequences of T >= 1 "
                       f"steps), got B={B}, T={T}"), (method, msg)
