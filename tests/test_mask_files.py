"""One mask file format for prune and train, read by load_masks; an --out ending in a slash is a
folder."""

from __future__ import annotations

import torch

from spectrumkit.masks import load_masks

TRAIN = ("train", "--data", "seq-mnist", "--data-option", "limit=64", "--data-option",
         "val_limit=16", "--cell", "gru", "--hidden-size", "4", "--method", "random",
         "--sparsity", "0.5", "--steps", "2", "--batch-size", "16", "--seed", "1")


def test_train_writes_a_mask_file_that_load_masks_reads(cli, tmp_path):
    out = tmp_path / "run"
    cli(*TRAIN, "--out", str(out)).ok()
    masks, config = load_masks(out / "mask.pt")
    held = torch.load(out / "checkpoint" / "checkpoint.pt", weights_only=True)["mask"]
    assert list(masks) == ["random"] and config["sparsity"] == 0.5
    assert sorted(masks["random"]) == sorted(held)
    assert all(torch.equal(masks["random"][k], held[k]) for k in held)


def test_prune_out_with_a_trailing_slash_writes_into_a_folder(cli, tmp_path):
    args = ("prune", "--hidden-size", "4", "--seq-len", "3", "--score-batch", "4", "--method", "random")
    cli(*args, "--out", str(tmp_path / "one.pt")).ok()
    cli(*args, "--out", str(tmp_path / "newdir") + "/").ok()
    assert (tmp_path / "newdir").is_dir()
    got, _ = load_masks(tmp_path / "newdir" / "masks.pt")
    ref, _ = load_masks(tmp_path / "one.pt")
    assert list(got) == list(ref) == ["random"]
    assert all(torch.equal(got["random"][k], ref["random"][k]) for k in ref["random"])


def test_a_fifo_given_as_a_mask_file_is_one_line(tmp_path):
    import os

    import pytest

    from spectrumkit.errors import SpectrumkitError

    fifo = tmp_path / "m.pt"
    os.mkfifo(fifo)
    with pytest.raises(SpectrumkitError, match=rf"{fifo} \(not a regular file but a FIFO\)"):
        load_masks(fifo)
