"""Tensors on the meta device hold no data: every entry point refuses them in one line."""

from __future__ import annotations

import pytest
import torch

from spectrumkit import init_params, spectrum, step_jacobians
from spectrumkit.errors import SpectrumkitError


def _case():
    params = init_params("gru", 3, 4, "glorot", seed=0)
    xs = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    return params, xs


@pytest.mark.parametrize("fn", [spectrum, step_jacobians], ids=["spectrum", "step_jacobians"])
def test_meta_inputs_are_refused_in_one_line(fn):
    params, xs = _case()
    with pytest.raises(SpectrumkitError, match=r"expected xs to hold data \(not on the meta "
                                               r"device\), got a meta tensor") as e:
        fn("gru", params, xs.to("meta"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("fn", [spectrum, step_jacobians], ids=["spectrum", "step_jacobians"])
def test_meta_params_are_refused_in_one_line(fn):
    params, xs = _case()
    name = sorted(params)[0]
    params = {**params, name: params[name].to("meta")}
    with pytest.raises(SpectrumkitError, match=rf"to hold data \(not on the meta device\), got a "
                                               rf"meta tensor") as e:
        fn("gru", params, xs)
    assert name in str(e.value) and "\n" not in str(e.value)
