"""The run configuration keeps every trial's key: the literal keys of representative trials, as
the flat trial config gave them before the configuration had parts, and the dump's flat form."""

import pytest

from spectrumkit.config import RunConfig, TrainingConfig, trial_key
from spectrumkit.config.parts import ModelConfig
from spectrumkit.study.config import TrialConfig

#: a fixed data identity, so that the keys do not depend on the bundled files
IDENT = {"source": "bundled", "fingerprint": "0123abcd"}

KEYS = [
    (dict(epochs=1), "5e5e865218a755251cc2b7722a0fdb7f2fa1580d2a7c8a52fb4d8742b83015ee"),
    (dict(steps=5, method="snip", sparsity=0.9, hidden_size=8,
          score_options={"balance": "gate"}),
     "9b14ea38ce577c19f30edf95a34e4d88b7ace03ab5325cae5535f0deea124b1f"),
    (dict(seed=3, steps=5, method="random", normalize="gamma", hidden_size=16),
     "bcd744f0b4ed76be0c6b0a47c2c23f2150799ee3052f7d3fd4d8f8fd8af0c3b6"),
    (dict(epochs=2, recipe="authors", horizon=8, pipeline="authors", cell="gru_cho", clip=1.0,
          lr=0.01), "02fb5a55cdbcef51967cb6ccd3db459162eae30afea172075c11a5744367fdb3"),
    (dict(steps=10, method="dense", sparsity=0.5, batch_size=32, optimizer="sgd", eval_every=5),
     "2e24326d2c13b7588f58b26edb6aecf898e2a232aa4f1cb4bd51e007ddb56179"),
    (dict(steps=100, method="l2", l2_stage_steps=10, sparsity=0.95),
     "c260e6c9469aaccea5381635768e3a4ca3cbf1d7d0761fc29dc225224317384d"),
    (dict(epochs=1, record=["sv_hist", "anatomy", "mask"], hist_bins=20,
          spectrum_method="lanczos", lyapunov_k=3),
     "ee1dd2865bf4fa7b48755935fbb37d5a0e66f14efa99dcbc5e7260eb7cae3d63"),
    (dict(steps=3, task="wikitext", embed_size=32, softmax_samples=100, data={"limit": 1000},
          init="normal:0.1", method="magnitude"),
     "50ef278853c758fa93a2ddaac4ce80a648bdfab913c8856a42bc89e5c7d19908"),
    (dict(steps=5, method="synflow", sparsity=0.9, hidden_size=8),
     "38c4c7eb83b5da597909590382302802bf6a48e7e70a850b65697cea72c742ef"),
]


@pytest.mark.parametrize("kw,key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_a_trial_keeps_its_key(kw, key):
    c = TrialConfig(**kw)
    assert trial_key(c, data=IDENT) == key
    assert trial_key(RunConfig.model_validate(c.model_dump(mode="json")), data=IDENT) == key


def test_parts_and_flat_keys_build_the_same_configuration():
    flat = RunConfig(hidden_size=8, steps=5, lr=0.01, method="random")
    parts = RunConfig(model=ModelConfig(hidden_size=8), training=TrainingConfig(steps=5, lr=0.01),
                      method="random")
    assert parts == flat and trial_key(parts, data=IDENT) == trial_key(flat, data=IDENT)
    assert flat.hidden_size == flat.model.hidden_size == 8
    assert flat.steps == flat.training.steps == 5 and flat.epochs is None


def test_the_default_configuration_trains_one_epoch():
    c = RunConfig()
    assert (c.epochs, c.steps, c.hidden_size, c.method, c.sparsity) == (1, None, 400, "jacobian",
                                                                         0.95)
    assert trial_key(c, data=IDENT) == KEYS[0][1]  # the same trial as epochs=1 given


def test_the_command_with_no_flags_is_the_default_configuration():
    from spectrumkit.cli.cmd_train import config_from_params, train_cmd

    with train_cmd.make_context("train", ["--out", "OUT"]) as ctx:
        c = config_from_params(ctx.params)
    assert c == RunConfig() and trial_key(c, data=IDENT) == KEYS[0][1]
