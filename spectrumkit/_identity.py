r"""What data a task reads, by content: :func:`data_identity` (NOTE [Data identity]).

Re-exported by :mod:`spectrumkit.data`, where it is documented as part of the data API.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ._digest import file_sha256
from ._mnist import _BUNDLED_SHA256, _find, _mnist_candidates
from .choices import TASKS
from .errors import check_choice, fail

__all__ = ["data_identity"]

# NOTE [Data identity]
# Which data a task reads, as a small JSON-able dict ``{"source", "fingerprint"}`` that the study
# runner puts into every trial's key and result, so results on different data never mix:
#
# * ``bundled``: the shipped files; the fingerprint is the SHA-256 of their pinned digests (no I/O:
#   they are checked against those digests on every load anyway).
# * ``root``: the files that ``load_task(task, root=...)`` reads (MNIST train and test images and
#   labels; the three WikiText splits). The fingerprint is the SHA-256 over, per file in a fixed
#   order: its role, its size and the SHA-256 of EVERY byte of it (the official digests of the
#   uncompressed MNIST files are not used: a gzipped copy is hashed as stored). A change anywhere
#   in a file changes the fingerprint. The digests are cached by (path, size, mtime)
#   (NOTE [Digest cache] in ``spectrumkit/_digest.py``), so a second run rereads nothing: the full
#   MNIST (11 MB gzipped) is hashed once.
#   The root's path and the files' mtimes are NOT part of it: the same files copied elsewhere (or
#   to another machine) are the same data, and a resumed study keeps its trials. Which examples
#   of those files form the splits (``split_rule`` of ``seq-mnist``) is a data option of the
#   trial's config, so it is in the trial's key beside this identity (NOTE [What the key covers]).
# * ``generated``: the synthetic tasks; their data follow from the config's options alone.
#
# The streamed corpora follow the same rule: ``wikitext-103`` fingerprints its three
# ``wiki.*.tokens`` files, ``1b`` every training shard found plus the two held-out shards it reads
# (NOTE [One Billion Words layout] in corpora.py). ``1b`` without a root reads its small sample,
# written from the bundled WikiText-2 text, so it is ``bundled`` with WikiText-2's digests;
# ``wikitext-103`` has no bundled copy and needs a root.


def _file_fingerprint(h: Any, role: str, path: Path) -> None:
    size, digest = file_sha256("data_identity", path)
    for part in (role.encode(), str(size).encode(), digest.encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)


def data_identity(task: str, root: str | Path | None = None) -> dict[str, Any]:
    r"""What data ``load_task(task, root=root)`` reads: ``{"source", "fingerprint"}``.

    ``source`` is ``"bundled"`` (no root), ``"root"`` (files under ``root``) or ``"generated"``
    (the synthetic tasks, fingerprint None); the fingerprint is a SHA-256 hex digest of the files
    read, NOTE [Data identity]. A root without the task's files, or a root for a synthetic task,
    is refused with the error :func:`load_task` would give.

    >>> data_identity("adding")
    {'source': 'generated', 'fingerprint': None}
    >>> data_identity("seq-mnist")["source"]
    'bundled'
    """
    fn = "data_identity"
    check_choice(fn, "task name", task, TASKS)
    if task in ("adding", "copy"):
        if root is not None:
            raise fail(fn, f"root=None for the synthetic task {task!r}", repr(str(root)))
        return {"source": "generated", "fingerprint": None}
    h = hashlib.sha256()
    if root is None:
        if task == "wikitext-103":
            raise fail(fn, "a root holding WikiText-103 (wiki.{train,valid,test}.tokens); "
                       "it is not bundled", "root=None")
        prefix = "mnist/" if task == "seq-mnist" else "wikitext-2/"  # 1b: its sample, from WT-2
        for rel in sorted(r for r in _BUNDLED_SHA256 if r.startswith(prefix)):
            h.update(f"{rel}={_BUNDLED_SHA256[rel]}\n".encode())
        return {"source": "bundled", "fingerprint": h.hexdigest()}
    rootp = Path(root).expanduser()
    if task == "seq-mnist":
        files = [(f"{prefix}-{kind}", _find(fn, f"MNIST {prefix} {kind}",
                                            _mnist_candidates(rootp, prefix, kind)))
                 for prefix in ("train", "t10k") for kind in ("images", "labels")]
    elif task in ("wikitext-103", "1b"):
        from .corpora import _one_b_files, _wt103_files
        _, train, val, test = (_one_b_files if task == "1b" else _wt103_files)(fn, rootp)
        files = [(f"train-{p.name}", p) for p in train] + [("val", val), ("test", test)]
    else:
        from .data import _wikitext_candidates
        files = [(stem, _find(fn, f"the WikiText {stem} split", _wikitext_candidates(rootp, stem)))
                 for stem in ("train", "valid", "test")]
    for role, path in files:
        _file_fingerprint(h, role, path)
    return {"source": "root", "fingerprint": h.hexdigest()}
