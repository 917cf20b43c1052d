r"""What data a task reads, by content: :func:`data_identity` (NOTE [Data identity]).

Re-exported by :mod:`spectrumkit.data`, where it is documented as part of the data API.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import fail
from ._digest import file_sha256
from ._files import BUNDLED_SHA256, find
from ._layouts import mnist_candidates, one_b_files, wikitext_candidates, wt103_files
from .tasks import get_task

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

# NOTE [User task identity]
# A task added by register_task (or an import path, NOTE [Your own task] in tasks.py) is
# ``{"source": "user", "fingerprint": ...}``: the SHA-256 of its name and of the fingerprint of
# what its loader returns with its default options (task_fingerprint in _user.py: every split's
# tensors, dtype, shape and bytes). So a trial's key changes when the loader's data change, not
# only when its name or options do; the options a trial gives are in its config, hence in its key
# beside this identity. Taking it calls the loader once (the data are not kept).


def _file_fingerprint(h: Any, role: str, path: Path) -> None:
    size, digest = file_sha256("data_identity", path)
    for part in (role.encode(), str(size).encode(), digest.encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)


def data_identity(task: str, root: str | Path | None = None) -> dict[str, Any]:
    r"""What data ``load_task(task, root=root)`` reads: ``{"source", "fingerprint"}``.

    ``source`` is ``"bundled"`` (no root), ``"root"`` (files under ``root``), ``"generated"``
    (the synthetic tasks, fingerprint None) or ``"user"`` (a registered task, NOTE [User task
    identity]); the fingerprint is a SHA-256 hex digest of the files
    read, NOTE [Data identity]. A root without the task's files, or a root for a synthetic task,
    is refused with the error :func:`load_task` would give.

    >>> data_identity("adding")
    {'source': 'generated', 'fingerprint': None}
    >>> data_identity("seq-mnist")["source"]
    'bundled'
    """
    fn = "data_identity"
    spec = get_task(fn, task)
    if not spec.builtin:
        return _user_identity(fn, spec.name, root)
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
        for rel in sorted(r for r in BUNDLED_SHA256 if r.startswith(prefix)):
            h.update(f"{rel}={BUNDLED_SHA256[rel]}\n".encode())
        return {"source": "bundled", "fingerprint": h.hexdigest()}
    rootp = Path(root).expanduser()
    if task == "seq-mnist":
        files = [(f"{prefix}-{kind}", find(fn, f"MNIST {prefix} {kind}",
                                            mnist_candidates(rootp, prefix, kind)))
                 for prefix in ("train", "t10k") for kind in ("images", "labels")]
    elif task in ("wikitext-103", "1b"):
        _, train, val, test = (one_b_files if task == "1b" else wt103_files)(fn, rootp)
        files = [(f"train-{p.name}", p) for p in train] + [("val", val), ("test", test)]
    else:
        files = [(stem, find(fn, f"the WikiText {stem} split", wikitext_candidates(rootp, stem)))
                 for stem in ("train", "valid", "test")]
    for role, path in files:
        _file_fingerprint(h, role, path)
    return {"source": "root", "fingerprint": h.hexdigest()}


def _user_identity(fn: str, name: str, root: str | Path | None) -> dict[str, Any]:
    """NOTE [User task identity]."""
    from ._user import task_fingerprint
    from .load import load_task

    if root is not None:
        raise fail(fn, f"root=None for the user task {name!r}", repr(str(root)))
    h = hashlib.sha256()
    for part in (name.encode(), task_fingerprint(load_task(name)).encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return {"source": "user", "fingerprint": h.hexdigest()}
