"""Extending a finished run to more steps gives exactly the fresh longer run, or is refused."""

from __future__ import annotations

import pytest

from spectrumkit import load_task, make_model, train
from spectrumkit.config import TrainingConfig
from spectrumkit.errors import SpectrumkitError


@pytest.fixture(scope="module")
def mnist():
    return load_task("seq-mnist", limit=128, val_limit=16)


def _kw(tmp_path, **over):
    t = {k: over.pop(k) for k in ("steps", "eval_every") if k in over}
    return {"training": TrainingConfig(batch_size=16, **t), "seed": 0, "device": "cpu",
            "checkpoint_dir": tmp_path / "ck", **over}


def _rows(result):
    return result.history.drop(columns=["seconds"]).to_dict("records")


def test_extending_a_run_past_a_row_a_fresh_run_lacks_is_refused(mnist, tmp_path):
    train(make_model(mnist, "gru", 4, seed=0), mnist, **_kw(tmp_path, steps=3))
    with pytest.raises(SpectrumkitError, match=r"train: expected .*--no-resume.*finished at step 3") as e:
        train(make_model(mnist, "gru", 4, seed=0), mnist, **_kw(tmp_path, steps=5))
    assert "\n" not in str(e.value)


def test_extending_a_run_on_the_evaluation_grid_equals_the_fresh_run(mnist, tmp_path):
    train(make_model(mnist, "gru", 4, seed=0), mnist, **_kw(tmp_path, steps=2, eval_every=2))
    longer = train(make_model(mnist, "gru", 4, seed=0), mnist,
                   **_kw(tmp_path, steps=4, eval_every=2))
    fresh = train(make_model(mnist, "gru", 4, seed=0), mnist,
                  **_kw(tmp_path, steps=4, eval_every=2, checkpoint_dir=None))
    assert _rows(longer) == _rows(fresh)
    drop = ("train_seconds",)
    assert {k: v for k, v in longer.metrics.items() if k not in drop} == \
        {k: v for k, v in fresh.metrics.items() if k not in drop}
