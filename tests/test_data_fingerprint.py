"""The data identity hashes every byte of every data file, through a digest cache that is a hint.

Expected digests are computed here with hashlib over the files' bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from spectrumkit.data import _digest
from spectrumkit.data._digest import file_sha256
from spectrumkit.data import data_identity
from spectrumkit.study.config import TrialConfig, trial_key

OLD = 1_600_000_000  # an mtime (s) far from now: a cache entry for it is not racy


def _idx(path: Path, arr: np.ndarray) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(head + arr.tobytes())


def _root(folder: Path, n_train: int = 6000) -> Path:
    """A plain MNIST root of random pixels: the training images are 4.7 MB (more than 2 MiB)."""
    folder.mkdir(parents=True)
    g = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", 20)):
        _idx(folder / f"{prefix}-images-idx3-ubyte", g.integers(0, 256, (n, 28, 28)))
        _idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return folder


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv(_digest.DIGEST_CACHE_ENV, raising=False)
    monkeypatch.setattr(_digest, "_memory", {})
    return home / "spectrumkit" / "digests.json"


def _expected_fingerprint(root: Path) -> str:
    h = hashlib.sha256()
    for prefix in ("train", "t10k"):
        for kind, idx in (("images", "idx3"), ("labels", "idx1")):
            data = (root / f"{prefix}-{kind}-{idx}-ubyte").read_bytes()
            for part in (f"{prefix}-{kind}".encode(), str(len(data)).encode(),
                         hashlib.sha256(data).hexdigest().encode()):
                h.update(len(part).to_bytes(8, "little"))
                h.update(part)
    return h.hexdigest()


def test_fingerprint_is_the_digest_of_every_byte_and_a_middle_byte_changes_the_key(
        tmp_path, cache_home):
    root = _root(tmp_path / "mnist")
    ident = data_identity("seq-mnist", root)
    assert ident == {"source": "root", "fingerprint": _expected_fingerprint(root)}
    config = TrialConfig(seed=0, epochs=1, method="random")
    before = trial_key(config, ident)
    images = root / "train-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    mid = len(data) // 2  # 2.3 MB in: more than 1 MiB from either end
    assert mid > 1 << 20 and len(data) - mid > 1 << 20
    data[mid] ^= 0x01
    images.write_bytes(bytes(data))
    after = data_identity("seq-mnist", root)
    assert after["fingerprint"] == _expected_fingerprint(root) != ident["fingerprint"]
    assert trial_key(config, after) != before


def test_second_digest_comes_from_the_cache_without_reading(tmp_path, cache_home, monkeypatch):
    f = tmp_path / "data.bin"
    f.write_bytes(b"spectrumkit" * 1000)
    os.utime(f, (OLD, OLD))
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256("t", f) == (11000, want)
    doc = json.loads(cache_home.read_text())
    entry = doc["files"][str(f.resolve())]
    assert (entry["size"], entry["mtime_ns"], entry["sha256"]) == (11000, OLD * 10**9, want)

    class NoHashing:
        @staticmethod
        def sha256():
            raise AssertionError("the file was read again")
    monkeypatch.setattr(_digest, "hashlib", NoHashing)
    monkeypatch.setattr(_digest, "_memory", {})  # a new process: only the cache file is left
    assert file_sha256("t", f) == (11000, want)


@pytest.mark.parametrize("junk", [b"\xff\xfe not utf-8", b"[1, 2]", b'{"version": 1, "files": 5}',
                                  b'{"version": 1, "files": {"X": {"size": "1"}}}', b"{"])
def test_corrupt_cache_is_ignored_and_rewritten(tmp_path, cache_home, junk):
    f = tmp_path / "data.bin"
    f.write_bytes(b"abc")
    os.utime(f, (OLD, OLD))
    cache_home.parent.mkdir(parents=True)
    cache_home.write_bytes(junk.replace(b"X", str(f.resolve()).encode()))
    assert file_sha256("t", f)[1] == hashlib.sha256(b"abc").hexdigest()
    assert json.loads(cache_home.read_text())["files"][str(f.resolve())]["sha256"] == \
        hashlib.sha256(b"abc").hexdigest()


def test_cache_entry_of_other_size_or_mtime_is_not_used(tmp_path, cache_home):
    f = tmp_path / "data.bin"
    f.write_bytes(b"abc")
    os.utime(f, (OLD, OLD))
    file_sha256("t", f)
    f.write_bytes(b"abd")  # same size, new mtime
    os.utime(f, (OLD + 5, OLD + 5))
    assert file_sha256("t", f)[1] == hashlib.sha256(b"abd").hexdigest()


def test_fresh_files_are_not_cached_and_the_cache_can_be_disabled(tmp_path, cache_home,
                                                                   monkeypatch):
    f = tmp_path / "fresh.bin"
    f.write_bytes(b"new")  # mtime now: an entry could miss a write in the same clock tick
    assert file_sha256("t", f)[1] == hashlib.sha256(b"new").hexdigest()
    assert not cache_home.exists()
    monkeypatch.setenv(_digest.DIGEST_CACHE_ENV, "1")
    os.utime(f, (OLD, OLD))
    assert file_sha256("t", f)[1] == hashlib.sha256(b"new").hexdigest()
    assert not cache_home.exists() and _digest.digest_cache_path() is None


def test_digest_of_a_fifo_or_folder_is_refused_naming_it(tmp_path, cache_home):
    from spectrumkit.errors import SpectrumkitError

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SpectrumkitError, match=f"t: expected a regular file at {fifo}"):
        file_sha256("t", fifo)  # never opened for reading: it would block
    with pytest.raises(SpectrumkitError, match=f"t: expected a regular file at {tmp_path}, "):
        file_sha256("t", tmp_path)
    with pytest.raises(SpectrumkitError, match="t: expected a readable file .*FileNotFoundError"):
        file_sha256("t", tmp_path / "missing")
