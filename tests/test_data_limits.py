"""Data files that lie or are empty: bounded reads, one-line refusals naming the file, and the
vocabulary's two reserved words. Peak memory is measured in a subprocess (VmHWM)."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from spectrumkit.data import load_task, read_idx, wikitext
from spectrumkit.data.corpora import MAX_LINE_BYTES, ONE_B_DIR, ONE_B_HELDOUT, ONE_B_TRAIN
from spectrumkit.data.vocab import vocab_from_counts
from spectrumkit.errors import SpectrumkitError

REPO = Path(__file__).resolve().parent.parent
PEAK_LIMIT_MB = 400


def _idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def _peak(code: str, *args: str) -> tuple[str, float]:
    """Run ``code`` in a fresh python (this checkout first on the path); its stdout and VmHWM."""
    probe = ("\nimport sys\nfor l in open('/proc/self/status'):\n"
             "    if l.startswith('VmHWM:'):\n        print('PEAK_KB', l.split()[1])\n")
    r = subprocess.run([sys.executable, "-c", code + probe, *args], capture_output=True, text=True,
                       timeout=300, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                         "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    return "\n".join(lines[:-1]), int(lines[-1].split()[1]) / 1024


_READ = """
import sys
from spectrumkit.data import read_idx
from spectrumkit.errors import SpectrumkitError
try:
    read_idx(sys.argv[1])
    print("read")
except SpectrumkitError as e:
    print(e)
"""


def _gzip_bomb(path: Path, images: int, inflated: int) -> None:
    """A gzip IDX file whose header promises ``images`` 28x28 images but that inflates to
    ``inflated`` bytes (zeros after the header: 1.5 GB compress to 6.5 MB at level 1)."""
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    head = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (images, 28, 28))
    chunk = bytes(1 << 24)
    with open(path, "wb") as f:
        f.write(c.compress(head))
        left = inflated - len(head)
        while left > 0:
            f.write(c.compress(chunk[:min(left, len(chunk))]))
            left -= len(chunk)
        f.write(c.flush())


@pytest.mark.slow
def test_gzip_idx_inflating_past_its_header_is_refused_with_bounded_memory(tmp_path):
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_bomb(bomb, 5010, 1_500_000_000)
    assert 6_000_000 < bomb.stat().st_size < 7_000_000
    promised = 16 + 5010 * 784
    out, peak = _peak(_READ, str(bomb))
    assert out == (f"read_idx: expected a gzip file inflating to the {promised} bytes its IDX "
                   f"header promises for shape (5010, 28, 28), got a trailer declaring "
                   f"{1_500_000_000 % 2**32} bytes (mod 2**32) for {bomb.stat().st_size} "
                   f"compressed bytes in {bomb}")
    assert peak < PEAK_LIMIT_MB, peak
    # the same file with a trailer that lies (it declares the promised size): the body is read
    # up to the promise, one byte more shows the excess
    raw = bytearray(bomb.read_bytes())
    raw[-4:] = promised.to_bytes(4, "little")
    bomb.write_bytes(bytes(raw))
    out, peak = _peak(_READ, str(bomb))
    assert out == (f"read_idx: expected {promised - 16} data bytes for shape (5010, 28, 28), got "
                   f"more in {bomb} (truncated or corrupt)")
    assert peak < PEAK_LIMIT_MB, peak


def test_gzip_idx_shorter_than_its_header_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    body = _idx_bytes(np.zeros((3, 28, 28)))
    path.write_bytes(gzip.compress(body[:-10], mtime=0))
    with pytest.raises(SpectrumkitError, match=r"read_idx: expected a gzip file inflating to the "
                                               r"2368 bytes"):
        read_idx(path)
    good = tmp_path / "y.gz"
    good.write_bytes(gzip.compress(body, mtime=0))
    assert np.array_equal(read_idx(good), np.zeros((3, 28, 28), dtype=np.uint8))


def test_idx_of_zero_images_is_refused_naming_the_file(tmp_path, cli):
    root = tmp_path / "mnist"
    root.mkdir()
    (root / "train-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((0, 28, 28))))
    (root / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros((0,))))
    with pytest.raises(SpectrumkitError, match="read_idx: expected an IDX file holding at least "
                                               r"one item, got shape \(0, 28, 28\) in "):
        read_idx(root / "train-images-idx3-ubyte")
    line = cli("train", "--data-root", root, "--hidden-size", 8, "--steps", 1,
               "--out", tmp_path / "o").error_line()
    assert str(root / "train-images-idx3-ubyte") in line and "at least one item" in line


# ------------------------------------------------------------------------------ vocabulary


def test_eos_and_unk_are_always_in_the_vocabulary():
    assert vocab_from_counts(Counter(), None) == ("<eos>", "<unk>")
    assert vocab_from_counts(Counter(), 2) == ("<eos>", "<unk>")
    # <eos> rarer than the cap's words: room is kept for it
    counts = Counter({"a": 9, "b": 8, "c": 7, "<eos>": 1})
    assert vocab_from_counts(counts, 3) == ("a", "<eos>", "<unk>")
    assert vocab_from_counts(counts, 4) == ("a", "b", "<eos>", "<unk>")
    assert vocab_from_counts(counts, None) == ("a", "b", "c", "<eos>", "<unk>")
    task = load_task("1b", sample=True, max_vocab=3, limit=2000)
    assert task.vocab is not None and len(task.vocab) == 3
    assert {"<eos>", "<unk>"} <= set(task.vocab)


@pytest.mark.slow
def test_train_with_a_vocabulary_of_three_runs(cli, tmp_path):
    r = cli("train", "--data", "1b", "--data-option", "sample=true", "--data-option", "max_vocab=3",
            "--cell", "lstm", "--hidden-size", 8, "--steps", 1, "--out", tmp_path / "x").ok()
    metrics = json.loads((tmp_path / "x" / "metrics.json").read_text())
    assert metrics["config"]["data"]["max_vocab"] == 3, r.stdout
    m = metrics["metrics"]
    assert m["val_ppl"] == pytest.approx(math.exp(m["val_loss"]), rel=1e-9)
    assert "3 words from train" in r.stdout


# ------------------------------------------------------------------------------ empty splits


def _one_b(folder: Path) -> Path:
    base = folder / ONE_B_DIR
    (base / ONE_B_TRAIN).mkdir(parents=True)
    (base / ONE_B_HELDOUT).mkdir(parents=True)
    (base / ONE_B_TRAIN / "news.en-00001-of-00100").write_text("the cat sat\nthe dog\n")
    for k in (0, 1):
        (base / ONE_B_HELDOUT / f"news.en.heldout-{k:05d}-of-00050").write_text("the cat\n")
    return base


@pytest.mark.parametrize("which,split", [
    (f"{ONE_B_TRAIN}/news.en-00001-of-00100", "training"),
    (f"{ONE_B_HELDOUT}/news.en.heldout-00001-of-00050", "validation"),
    (f"{ONE_B_HELDOUT}/news.en.heldout-00000-of-00050", "test")])
def test_empty_corpus_split_is_refused_naming_the_file(tmp_path, which, split):
    base = _one_b(tmp_path)
    (base / which).write_text("")
    with pytest.raises(SpectrumkitError, match=f"load_task: expected a {split} split of at least "
                                               f"2 tokens, got 0 in {base / which}$"):
        load_task("1b", root=tmp_path)


def test_empty_wikitext_split_is_refused_naming_the_file(tmp_path, cli):
    for stem, text in (("train", "a b\n"), ("valid", ""), ("test", "a\n")):
        (tmp_path / f"{stem}.txt").write_text(text)
    with pytest.raises(SpectrumkitError, match="wikitext: expected a validation split of at least "
                                               f"2 tokens, got 0 in {tmp_path / 'valid.txt'}$"):
        wikitext(tmp_path)
    line = cli("train", "--data", "wikitext", "--data-root", tmp_path, "--hidden-size", 8, "--steps", 1,
               "--out", tmp_path / "o").error_line()
    assert str(tmp_path / "valid.txt") in line


# ------------------------------------------------------------------------------ line length


def test_corpus_line_longer_than_the_bound_is_refused_naming_file_and_line(tmp_path):
    base = _one_b(tmp_path)
    shard = base / ONE_B_TRAIN / "news.en-00001-of-00100"
    shard.write_bytes(b"short line\n" + b"w " * (MAX_LINE_BYTES // 2 + 1))
    with pytest.raises(SpectrumkitError, match=f"load_task: expected lines of at most "
                                               f"{MAX_LINE_BYTES} bytes .*, got a longer line, "
                                               f"line 2 of {shard}$"):
        load_task("1b", root=tmp_path)
    shard.write_bytes(b"w " * (MAX_LINE_BYTES // 2 - 1) + b"\n")  # at the bound: read
    assert len(load_task("1b", root=tmp_path).train) == MAX_LINE_BYTES // 2


@pytest.mark.slow
def test_shard_without_newlines_is_refused_with_bounded_memory(tmp_path):
    base = _one_b(tmp_path)
    shard = base / ONE_B_TRAIN / "news.en-00001-of-00100"
    with open(shard, "wb") as f:
        for _ in range(115):
            f.write(b"word " * 200_000)  # 115 MB, no newline
    out, peak = _peak("import sys\nfrom spectrumkit.data import load_task\n"
                      "from spectrumkit.errors import SpectrumkitError\n"
                      "try:\n    load_task('1b', root=sys.argv[1])\n"
                      "except SpectrumkitError as e:\n    print(e)\n", str(tmp_path))
    assert out.endswith(f"got a longer line, line 1 of {shard}")
    assert peak < PEAK_LIMIT_MB, peak


# ------------------------------------------------------------------------------ task sizes


@pytest.mark.parametrize("options", [["T=1000000000"], ["n_train=100000000000"]])
def test_synthetic_task_sizes_are_checked_against_memory(cli, tmp_path, options):
    args = [a for o in options for a in ("--data-option", o)]
    for task in ("adding", "copy"):
        line = cli("train", "--data", task, *args, "--hidden-size", 8, "--steps", 1,
                   "--out", tmp_path / task).error_line()
        assert f"the {task} task's data (T=" in line and "that fits in memory" in line, line
        assert "GiB needed" in line
