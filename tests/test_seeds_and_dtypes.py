"""Seeds and dtypes: a seed is the same network and the same batch in every dtype (float64 is the
float32 draw cast), and the library refuses seeds beyond 64 bits, infinite inits and the meta
device."""

from __future__ import annotations

import pytest
import torch

from spectrumkit.config import TrainingConfig
from spectrumkit import SpectrumkitError
from tests.cases import TINY_SPECTRUM

F64 = torch.float64


@pytest.mark.parametrize("scheme", ["glorot", "glorot_uniform", "he", "normal:0.3",
                                    "uniform:-0.2,0.5", "torch", "orthogonal;bias=torch"])
def test_float64_init_is_the_float32_init_cast(scheme):
    from spectrumkit.init import init_params

    p32 = init_params("lstm", 5, 4, scheme, seed=3, dtype=torch.float32)
    p64 = init_params("lstm", 5, 4, scheme, seed=3, dtype=F64)
    for k in p32:
        assert p32[k].dtype == torch.float32 and p64[k].dtype == F64
        if scheme.startswith("orthogonal") and not k.startswith("bias"):
            # orthogonal is computed in float64 for every dtype (QR), then cast
            assert torch.equal(p64[k].float(), p32[k]), k
        else:
            assert torch.equal(p64[k], p32[k].double()), k


def test_float64_models_and_cli_batch_are_the_float32_ones_cast():
    from spectrumkit.cli._data import cli_batch
    from spectrumkit.models import LanguageModel, SequenceClassifier

    for make in (lambda dt: SequenceClassifier("gru", 3, 4, 5, seed=7, dtype=dt),
                 lambda dt: LanguageModel("rnn", 11, 3, 4, seed=7, dtype=dt)):
        a, b = make(torch.float32).state_dict(), make(F64).state_dict()
        for k in a:
            assert b[k].dtype == F64 and torch.equal(b[k], a[k].double()), k
    x32, y32 = cli_batch("t", "gaussian", None, 4, 6, 3, 10, 5, dtype=torch.float32)
    x64, y64 = cli_batch("t", "gaussian", None, 4, 6, 3, 10, 5, dtype=F64)
    assert x64.dtype == F64 and torch.equal(x64, x32.double()) and torch.equal(y64, y32)


def test_spectrum_cli_float64_checks_the_float32_run(tmp_path, cli):
    """The same seed in both dtypes: the float64 spectrum is the float32 one to float32
    precision."""
    import pandas as pd

    tables = {}
    for dt in ("float32", "float64"):
        r = cli(*TINY_SPECTRUM, "--dtype", dt, "--device", "cpu", "--out", tmp_path / dt)
        assert r.returncode == 0, r.stderr
        tables[dt] = pd.read_csv(tmp_path / dt / "spectrum.csv", index_col=0)
    a, b = tables["float32"], tables["float64"]
    assert list(a.columns) == list(b.columns) and len(a) == 4
    num = a.select_dtypes("number").columns
    assert ((a[num] - b[num]).abs() <= 1e-4 * (1 + b[num].abs())).all().all(), (a[num] - b[num])


def test_library_refuses_seed_beyond_64_bits_inf_init_and_meta_device():
    from spectrumkit.data import load_task
    from spectrumkit.init import init_params
    from spectrumkit.training import make_model, train

    task = load_task("adding", T=4, n_train=8, n_val=4, n_test=4)
    with pytest.raises(SpectrumkitError, match=r"train: expected seed to be an integer in "
                       r"0\.\.2\*\*63 - 1, got 1180591620717411303424"):
        train(make_model(task, "gru", 3, seed=0), task, training=TrainingConfig(steps=1), seed=2**70, device="cpu")
    with pytest.raises(SpectrumkitError, match=r"init_params: expected .*finite.*normal:1e\+39"):
        init_params("gru", 2, 3, "normal:1e39", seed=0)
    with pytest.raises(SpectrumkitError, match=r"init_params: expected .*device.*, got meta"):
        make_model(task, "gru", 3, seed=0, device="meta")
    with pytest.raises(SpectrumkitError, match=r"train: expected a model whose parameters hold "
                       r"data .*on meta"):
        train(make_model(task, "gru", 3, seed=0).to("meta"), task, training=TrainingConfig(steps=1), seed=0, device="cpu")
