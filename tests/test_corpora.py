"""One Billion Words and WikiText-103 readers, on trees built here in the exact real layouts.

Expected values come from transcriptions written in these tests: the token stream of a tree (words
of every line, then <eos>), the vocabulary (counts, most frequent first, ties by first occurrence,
<unk> included in the cap), and the batching (contiguous rows of L = n // B tokens, windows of
bptt, targets shifted by one).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spectrumkit.data import StreamedTokens, load_task, sample_batch, write_1b_sample
from spectrumkit.errors import SpectrumkitError

TRAIN = "training-monolingual.tokenized.shuffled"
HELD = "heldout-monolingual.tokenized.shuffled"
BENCH = "1-billion-word-language-modeling-benchmark-r13output"


def write(path: Path, lines: list[str], gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(line + "\n" for line in lines).encode("utf-8")
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(body))
    else:
        path.write_bytes(body)


def one_b_tree(root: Path, train: dict[int, list[str]], held: dict[int, list[str]],
               gz_odd: bool = True) -> Path:
    """The distributed layout; odd shard numbers gzipped (``.gz``) when ``gz_odd``."""
    base = root / BENCH
    for k, lines in train.items():
        write(base / TRAIN / f"news.en-{k:05d}-of-00100", lines, gz_odd and k % 2 == 1)
    for k, lines in held.items():
        write(base / HELD / f"news.en.heldout-{k:05d}-of-00050", lines, gz_odd and k % 2 == 1)
    return base


def stream_of(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        out += line.split() + ["<eos>"]
    return out


def ref_vocab(tokens: list[str], cap: int | None) -> list[str]:
    """Independent transcription: counts, sort by (-count, first position), <unk> in the cap."""
    first, count = {}, {}
    for i, w in enumerate(tokens):
        first.setdefault(w, i)
        count[w] = count.get(w, 0) + 1
    words = sorted(count, key=lambda w: (-count[w], first[w]))
    if cap is not None and len(words) + ("<unk>" not in words) > cap:
        words = words[:cap] if "<unk>" in words[:cap] else words[:cap - 1]
    return words if "<unk>" in words else words + ["<unk>"]


def ref_windows(ids: list[int], B: int, bptt: int) -> list[tuple[list, list]]:
    L = len(ids) // B
    rows = [ids[b * L:(b + 1) * L] for b in range(B)]
    out = []
    for s in range(0, L - 1, bptt):
        t = min(bptt, L - 1 - s)
        out.append(([r[s:s + t] for r in rows], [r[s + 1:s + 1 + t] for r in rows]))
    return out


TRAIN_LINES = {
    1: ["the cat sat", "a dog ran far", "the end"],          # gzipped
    2: ["the dog sat on the cat", "", "zebra"],              # plain; an empty line is one <eos>
    3: ["the cat the dog", "quokka quokka"],                 # gzipped
}
HELD_LINES = {0: ["test line one", "the cat"], 1: ["valid the dog", "x"], 2: ["never read"]}


def test_1b_counts_eos_vocabulary_and_splits(tmp_path):
    one_b_tree(tmp_path, TRAIN_LINES, HELD_LINES)
    assert (tmp_path / BENCH / TRAIN / "news.en-00001-of-00100.gz").is_file()
    assert (tmp_path / BENCH / TRAIN / "news.en-00002-of-00100").is_file()
    task = load_task("1b", root=tmp_path, bptt=3)  # root = the parent of the benchmark folder
    toks = stream_of(TRAIN_LINES[1] + TRAIN_LINES[2] + TRAIN_LINES[3])
    assert len(task.train) == len(toks) == 30
    assert isinstance(task.train, StreamedTokens)
    assert task.train.per_file == (12, 10, 8)
    vocab = ref_vocab(toks, None)
    assert list(task.vocab) == vocab and task.vocab_size == len(vocab)
    ids = [vocab.index(w) for w in toks]
    # the streamed windows equal the in-memory batching of the whole stream
    got = [(a.tolist(), b.tolist()) for a, b in task.train.windows(2, 3)]
    assert got == ref_windows(ids, 2, 3)
    # <eos> closes every line, the empty line included
    eos = vocab.index("<eos>")
    stream = torch.cat([torch.cat([a[0], b[0, -1:]]) for a, b in task.train.windows(1, 100)])
    assert stream.tolist() == ids
    assert [i for i, t in enumerate(ids) if t == eos] == [3, 8, 11, 18, 19, 21, 26, 29]
    # held-out shard 00000 = test, 00001 = val; shard 00002 is never read
    unk = vocab.index("<unk>")
    val = [vocab.index(w) if w in vocab else unk for w in stream_of(HELD_LINES[1])]
    test = [vocab.index(w) if w in vocab else unk for w in stream_of(HELD_LINES[0])]
    assert task.val.ids.tolist() == val and task.test.ids.tolist() == test
    assert "held-out shard 00001" in task.description and "3 of 99 training shards" in \
        task.description


def test_1b_truncated_vocabulary_maps_to_unk(tmp_path):
    one_b_tree(tmp_path, TRAIN_LINES, HELD_LINES, gz_odd=False)
    task = load_task("1b", root=tmp_path / BENCH, max_vocab=4, bptt=5)  # root = the folder itself
    toks = stream_of(TRAIN_LINES[1] + TRAIN_LINES[2] + TRAIN_LINES[3])
    vocab = ref_vocab(toks, 4)
    assert list(task.vocab) == vocab == ["<eos>", "the", "cat", "<unk>"]  # cat before dog: tie
    ids = [vocab.index(w) if w in vocab else 3 for w in toks]
    assert sum(i == 3 for i in ids) == 13  # 30 tokens - 8 <eos> - 6 the - 3 cat
    got = [(a.tolist(), b.tolist()) for a, b in task.train.windows(3, 5)]
    assert got == ref_windows(ids, 3, 5)
    assert task.val.ids.tolist() == [3, 1, 3, 0, 3, 0]  # "valid the dog <eos> x <eos>"


def test_1b_limit_reads_a_prefix_for_vocabulary_and_training(tmp_path):
    one_b_tree(tmp_path, TRAIN_LINES, HELD_LINES)
    task = load_task("1b", root=tmp_path, limit=14)
    toks = stream_of(TRAIN_LINES[1] + TRAIN_LINES[2] + TRAIN_LINES[3])[:14]
    vocab = ref_vocab(toks, None)
    assert len(task.train) == 14 and list(task.vocab) == vocab and "dog" in vocab
    assert "zebra" not in vocab and "quokka" not in vocab
    assert task.train.per_file == (12, 2)  # stops inside shard 2, shard 3 not read
    ids = [vocab.index(w) for w in toks]
    assert [(a.tolist(), b.tolist()) for a, b in task.train.windows(2, 2)] == \
        ref_windows(ids, 2, 2)


def test_windows_resume_and_sample_batch(tmp_path):
    one_b_tree(tmp_path, TRAIN_LINES, HELD_LINES)
    s = load_task("1b", root=tmp_path).train
    every = [(a.tolist(), b.tolist()) for a, b in s.windows(2, 2)]
    assert len(every) == s.num_windows(2, 2) == 7  # L = 15: ceil(14 / 2)
    for k in (0, 1, 5, 7):
        assert [(a.tolist(), b.tolist()) for a, b in s.windows(2, 2, start=k)] == every[k:]
    a, b = sample_batch(s, 2, generator=torch.Generator(), bptt=2)
    assert (a.tolist(), b.tolist()) == every[0]
    with pytest.raises(SpectrumkitError, match="start in"):
        s.windows(2, 2, start=8)
    with pytest.raises(SpectrumkitError, match="at least 32 tokens"):
        s.windows(16, 2)


def test_wikitext103_layout(tmp_path):
    d = tmp_path / "wikitext-103"
    train = [" = Title = ", " the cat sat . ", "", " the dog . "]
    write(d / "wiki.train.tokens", train, gz=True)
    write(d / "wiki.valid.tokens", [" the cat . "], gz=False)
    write(d / "wiki.test.tokens", [" a dog "], gz=False)
    for root in (tmp_path, d):
        task = load_task("wikitext-103", root=root, bptt=4)
        toks = stream_of(train)
        vocab = ref_vocab(toks, None)
        assert len(task.train) == len(toks) == 14 and list(task.vocab) == vocab
        ids = [vocab.index(w) for w in toks]
        assert [(a.tolist(), b.tolist()) for a, b in task.train.windows(3, 4)] == \
            ref_windows(ids, 3, 4)
        assert task.val.ids.tolist() == [vocab.index(w) for w in ["the", "cat", ".", "<eos>"]]
        unk = vocab.index("<unk>")
        assert task.test.ids.tolist() == [unk, vocab.index("dog"), vocab.index("<eos>")]
        assert "wiki.train.tokens" in task.description


def test_1b_sample_has_the_exact_layout(tmp_path):
    base = write_1b_sample(tmp_path)
    assert base.name == BENCH
    names = sorted(p.name for p in (base / TRAIN).iterdir())
    assert len(names) == 99
    assert names[0] == "news.en-00001-of-00100.gz" and names[1] == "news.en-00002-of-00100"
    assert names[-1] == "news.en-00099-of-00100.gz"
    held = sorted(p.name for p in (base / HELD).iterdir())
    assert len(held) == 50 and held[0] == "news.en.heldout-00000-of-00050"
    assert held[1] == "news.en.heldout-00001-of-00050.gz"
    task = load_task("1b", root=tmp_path, max_vocab=1000)
    lines = []
    for k in range(1, 100):
        p = base / TRAIN / (f"news.en-{k:05d}-of-00100" + (".gz" if k % 2 else ""))
        raw = p.read_bytes()
        lines += (gzip.decompress(raw) if k % 2 else raw).decode("utf-8").splitlines()
    assert len(task.train) == len(stream_of(lines)) == 216347
    # WikiText's text has its own <unk> tokens, frequent enough to be among the top 1000
    assert list(task.vocab) == ref_vocab(stream_of(lines), 1000) and task.vocab_size == 1000


@pytest.mark.parametrize("break_it, message", [
    (lambda b: __import__("shutil").rmtree(b / TRAIN), "no folder .*" + TRAIN),
    (lambda b: __import__("shutil").rmtree(b / HELD), "no folder .*" + HELD),
    (lambda b: [p.unlink() for p in (b / TRAIN).iterdir()], "no training shard"),
    (lambda b: (b / HELD / "news.en.heldout-00001-of-00050.gz").unlink(), "no val shard"),
    (lambda b: write(b / TRAIN / "news.en-00001-of-00100", ["x"], gz=False), "plain or gzipped"),
])
def test_1b_bad_layouts(tmp_path, break_it, message):
    base = one_b_tree(tmp_path, TRAIN_LINES, HELD_LINES)
    break_it(base)
    with pytest.raises(SpectrumkitError, match=message) as e:
        load_task("1b", root=tmp_path)
    assert "One Billion Words layout" in str(e.value) or "plain or gzipped" in str(e.value)


def test_bad_roots_and_options(tmp_path):
    with pytest.raises(SpectrumkitError, match="not bundled"):
        load_task("1b")
    with pytest.raises(SpectrumkitError, match="WikiText-103 is not bundled"):
        load_task("wikitext-103")
    with pytest.raises(SpectrumkitError, match="no wiki.train.tokens"):
        load_task("wikitext-103", root=tmp_path)
    with pytest.raises(SpectrumkitError, match="root=None with sample=True"):
        load_task("1b", root=tmp_path, sample=True)
    with pytest.raises(SpectrumkitError, match="max_vocab >= 2"):
        load_task("1b", sample=True, max_vocab=1)
    with pytest.raises(SpectrumkitError, match="options for 1b"):
        load_task("1b", sample=True, vocab=10)


def test_cli_missing_shard_folder_is_one_line(tmp_path, cli):
    r = cli("train", "--data", "1b", "--data-root", str(tmp_path), "--hidden-size", "4",
            "--steps", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: load_task: expected the One Billion")
    assert "news.en-000NN-of-00100" in lines[0] and "news.en.heldout-000NN-of-00050" in lines[0]


# ------------------------------------------------------------------------------------------------
# Streaming: peak RSS on a 5-million-token corpus
# ------------------------------------------------------------------------------------------------

# Peak RSS = VmHWM of /proc/self/status (Linux). Not getrusage's ru_maxrss: that one survives
# exec, so a child started by a big pytest process reports the parent's peak.
_PROBE = r"""
import json, re, sys
import numpy, torch
import spectrumkit.data
for name in spectrumkit.data.__all__:  # the package imports its modules on first use: all here
    getattr(spectrumkit.data, name)
def peak_kb():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
if sys.argv[1] == "stream":
    task = spectrumkit.data.load_task("1b", root=sys.argv[2], max_vocab=1000)
    n = windows = 0
    for a, b in task.train.windows(32, 35):
        n += a.numel()
        windows += 1
    print(json.dumps({"rss_kb": peak_kb(),
                      "tokens": len(task.train), "seen": n, "windows": windows}))
else:  # "base": imports only; "array": imports and the int64 array of 5 M token ids, touched
    ids = torch.ones(5_000_000, dtype=torch.long) if sys.argv[1] == "array" else None
    print(json.dumps({"rss_kb": peak_kb()}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_a_5m_token_corpus_streams_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(5000)])
    per_line, n_lines = 24, 200_000  # 25 tokens a line with <eos>: 5,000,000 tokens
    ids = np.minimum(rng.zipf(1.3, size=per_line * n_lines) - 1, 4999).reshape(n_lines, per_line)
    for shard in range(4):
        part = ids[shard::4]
        text = "\n".join(" ".join(row) for row in words[part]) + "\n"
        write(tmp_path / BENCH / TRAIN / f"news.en-{shard + 1:05d}-of-00100",
              text.rstrip("\n").split("\n"), gz=shard % 2 == 1)
    one_b_tree(tmp_path, {}, {0: ["w1 w2"], 1: ["w3"]})

    def rss(*args: str) -> dict:
        r = subprocess.run([sys.executable, "-c", _PROBE, *args], check=False, capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[1], timeout=600,
                           env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    base, array, streamed = rss("base"), rss("array"), rss("stream", str(tmp_path))
    n = streamed["tokens"]
    assert n == per_line * n_lines + n_lines == 5_000_000
    assert streamed["windows"] == 4465 and streamed["seen"] == 32 * (n // 32 - 1)  # all read: ceil(156249 / 35)
    array_mb = n * 8 / 2**20  # the int64 token array: 38.1 MiB
    grew_mb = (streamed["rss_kb"] - base["rss_kb"]) / 1024
    array_grew_mb = (array["rss_kb"] - base["rss_kb"]) / 1024
    print(f"peak RSS: import only {base['rss_kb'] / 1024:.1f} MiB; streaming {n} tokens "
          f"{streamed['rss_kb'] / 1024:.1f} MiB (+{grew_mb:.1f}); holding the int64 token array "
          f"{array['rss_kb'] / 1024:.1f} MiB (+{array_grew_mb:.1f}, the array is "
          f"{array_mb:.1f} MiB)")
    assert array_grew_mb > 0.9 * array_mb  # the measurement sees an array of that size
    assert grew_mb < array_mb / 4


def test_a_shard_that_shrinks_after_loading_is_an_error(tmp_path):
    base = one_b_tree(tmp_path, TRAIN_LINES, HELD_LINES, gz_odd=False)
    s = load_task("1b", root=tmp_path).train
    write(base / TRAIN / "news.en-00003-of-00100", ["the"], gz=False)
    with pytest.raises(SpectrumkitError, match="changed on disk"):
        list(s.windows(2, 2))


def test_data_identity_of_the_streamed_corpora_follows_their_files(tmp_path):
    """The study key's data identity (NOTE [Data identity]) reads the files these loaders read."""
    from spectrumkit.data import data_identity

    a, b = tmp_path / "a", tmp_path / "b"
    one_b_tree(a, TRAIN_LINES, HELD_LINES)
    one_b_tree(b, TRAIN_LINES, HELD_LINES)
    ia, ib = data_identity("1b", a), data_identity("1b", b)
    assert ia["source"] == "root" and ia == ib               # same files elsewhere: same data
    write(b / BENCH / TRAIN / "news.en-00002-of-00100", ["the dog sat on the cow"], gz=False)
    assert data_identity("1b", b) != ia                      # a changed training shard
    write(a / BENCH / HELD / "news.en.heldout-00002-of-00050", ["changed"], gz=False)
    assert data_identity("1b", a) == ia                      # a shard it never reads
    # without a root, 1b reads its sample made from the bundled WikiText-2: WikiText-2's identity
    assert data_identity("1b") == data_identity("wikitext")
    d = tmp_path / "wikitext-103"
    for stem in ("train", "valid", "test"):
        write(d / f"wiki.{stem}.tokens", [f" {stem} words . "], gz=False)
    w = data_identity("wikitext-103", tmp_path)
    assert w["source"] == "root" and w == data_identity("wikitext-103", d)
    write(d / "wiki.valid.tokens", [" other words . "], gz=False)
    assert data_identity("wikitext-103", d) != w
    with pytest.raises(SpectrumkitError, match="WikiText-103"):
        data_identity("wikitext-103")


def test_language_paper_rows_run_where_their_data_is(tmp_path):
    """A root holding only One Billion Words: the 1b rows get its identity, the other data sets'
    rows are kept and fail when run, each with its loader's message (``Study.with_data_root``)."""
    from spectrumkit.data import data_identity
    from spectrumkit.study.spec import load_study

    one_b_tree(tmp_path, TRAIN_LINES, HELD_LINES)
    study = load_study("language", "paper", data_root=str(tmp_path))
    assert study.data["1b"] == data_identity("1b", tmp_path)
    assert {t: d["source"] for t, d in study.data.items()} == \
        {"1b": "root", "wikitext": "missing", "wikitext-103": "missing"}
    assert "wiki.train.tokens" in study.data["wikitext-103"]["error"]
    assert {c.task for c in study.configs} == {"1b", "wikitext", "wikitext-103"}
    with pytest.raises(SpectrumkitError):        # no data set at all under the root: refused
        load_study("language", "paper", data_root=str(tmp_path / "empty"))
