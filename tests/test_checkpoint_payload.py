"""A checkpoint's payload is checked against its identity on resume: the mask (digest, keys,
shapes, dtype) and every field of the training state; a mismatch is one line naming the field."""

from __future__ import annotations

import pytest
import torch

from spectrumkit.config import TrainingConfig
from spectrumkit import load_task, make_model, train
from spectrumkit.errors import SpectrumkitError


@pytest.fixture(scope="module")
def mnist():
    return load_task("seq-mnist", limit=64, val_limit=16)


def _mask(model, density, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(p.shape, generator=g) < density
            for k, p in model.prunable(include_bias=False).items()}


class _Stop(Exception):
    pass


def _stop_at_3(info):
    if info["step"] == 3:
        raise _Stop


def _interrupted(mnist, tmp_path):
    """A 0.5-density run of 4 steps stopped after its step-2 checkpoint, and how to resume it."""
    ckdir = tmp_path / "ck"
    model = make_model(mnist, "gru", 4, seed=0)
    mask = _mask(model, 0.5, seed=0)
    kw = {"training": TrainingConfig(steps=4, batch_size=16, eval_every=2), "seed": 0, "device": "cpu",
          "checkpoint_dir": ckdir, "mask": mask}
    with pytest.raises(_Stop):
        train(model, mnist, callback=_stop_at_3, **kw)
    return ckdir / "checkpoint.pt", kw


def _tamper(path, change):
    ck = torch.load(path, weights_only=True)
    change(ck)
    torch.save(ck, path)


def _first(ck):
    return sorted(ck["mask"])[0]


CASES = {
    "float-mask": (lambda ck: ck["mask"].update({_first(ck): ck["mask"][_first(ck)].float()}),
                   r"mask\['[^']+'\] to be a bool tensor"),
    "wrong-shape-mask": (lambda ck: ck["mask"].update({_first(ck): ck["mask"][_first(ck)][:1]}),
                         r"mask\['[^']+'\] of shape"),
    "wrong-key-mask": (lambda ck: ck["mask"].update({"nope": ck["mask"].pop(_first(ck))}),
                       r"mask names among"),
    "dense-mask": (lambda ck: ck.update(mask={k: torch.ones_like(v) for k, v in
                                              ck["mask"].items()}),
                   r"mask: its digest differs from the run's"),
    "no-mask": (lambda ck: ck.update(mask=None), r"mask: none, but the run holds one"),
    "rows-garbage": (lambda ck: ck["state"].update(rows="garbage"), r"state\.rows"),
    "step-string": (lambda ck: ck["state"].update(step="1"), r"state\.step"),
    "pos-huge": (lambda ck: ck["state"].update(pos=10**9), r"state\.pos"),
    "status-other": (lambda ck: ck["state"].update(status="odd"), r"state\.status"),
    "order-float": (lambda ck: ck["state"].update(order=torch.zeros(3)), r"state\.order"),
    "loss-count-negative": (lambda ck: ck["state"].update(loss_count=-1), r"state\.loss_count"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_checkpoint_payload_is_one_line_naming_the_field(mnist, tmp_path, case):
    path, kw = _interrupted(mnist, tmp_path)
    change, message = CASES[case]
    _tamper(path, change)
    model = make_model(mnist, "gru", 4, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(SpectrumkitError, match=rf"train: expected .*{path} \({message}") as e:
        train(model, mnist, **kw)
    assert "\n" not in str(e.value) and "--no-resume" in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_untouched_checkpoint_resumes_to_the_uninterrupted_run(mnist, tmp_path):
    path, kw = _interrupted(mnist, tmp_path)
    resumed = train(make_model(mnist, "gru", 4, seed=0), mnist, **kw)
    whole = train(make_model(mnist, "gru", 4, seed=0), mnist,
                  **{**kw, "checkpoint_dir": tmp_path / "other"})
    assert resumed.history["train_loss"].tolist() == whole.history["train_loss"].tolist()
    assert all(torch.equal(resumed.mask[k], whole.mask[k]) for k in whole.mask)


def test_a_fifo_at_the_checkpoint_path_is_one_line_and_never_blocks(mnist, tmp_path):
    import os

    ckdir = tmp_path / "ck"
    ckdir.mkdir()
    os.mkfifo(ckdir / "checkpoint.pt")
    with pytest.raises(SpectrumkitError, match=r"checkpoint.pt \((unreadable: not a regular file "
                                               r"but )?a FIFO\)"):
        train(make_model(mnist, "gru", 4, seed=0), mnist, training=TrainingConfig(steps=2, batch_size=16), seed=0,
              device="cpu", checkpoint_dir=ckdir)
