r"""A user task's data: what its loader returns, as :class:`~spectrumkit.data.TaskData`, and its
fingerprint.

Legend: n = examples, T = steps, D = input size, C = classes, V = vocabulary.

NOTE [User task data]
A loader may return (checked in this order):

* a :class:`TaskData`: kept, renamed to the registered name;
* a mapping ``{"train", "val"[, "test"]}`` whose values are ``(xs, ys)`` tensor pairs,
  :class:`SequenceDataset` or ``torch.utils.data.Dataset`` objects of ``(x, y)`` pairs;
* one ``(xs, ys)`` pair, or one ``Dataset``: a pool, split without randomness as the bundled
  MNIST is (example i goes to val when ``i % 5 == 4``; no test split).

Each split becomes a :class:`SequenceDataset`. The kind follows from the tensors, and a declared
kind must agree: float xs (n, T, D) with long ys (n,) is ``classification`` (C = the largest label
+ 1 over all splits); float xs (n, T, D) with float ys (n,) is ``regression``; long xs (n, T) with
long ys (n, T) is ``language`` with per-step targets, as the copy task (V = the largest id + 1).
Float tensors are stored as float32 (the models cast to their own dtype).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import fail
from ._digest import file_sha256
from ._stream import StreamedTokens
from .containers import SequenceDataset, TaskData, TokenStream

__all__ = ["task_fingerprint", "user_task_data"]

_FORMS = "TaskData, tensors or a Dataset of sequences"


def _stack(fn: str, ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(xs, ys) of a map-style Dataset of (x, y) pairs, stacked."""
    try:
        items = [ds[i] for i in range(len(ds))]
    except TypeError:
        raise fail(fn, "a Dataset with __len__ and __getitem__ (map-style)",
                   type(ds).__name__) from None
    if not items:
        raise fail(fn, "a non-empty Dataset", "0 examples")
    if not all(isinstance(it, (tuple, list)) and len(it) == 2 for it in items):
        raise fail(fn, "a Dataset of (x, y) pairs", type(items[0]).__name__)
    try:
        xs = torch.stack([torch.as_tensor(x) for x, _ in items])
        ys = torch.stack([torch.as_tensor(y) for _, y in items])
    except (RuntimeError, TypeError, ValueError) as e:
        raise fail(fn, "a Dataset of (x, y) pairs of equal shapes", " ".join(str(e).split()))
    return xs, ys


def _pair(fn: str, what: str, value: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(value, SequenceDataset):
        return value.xs, value.ys
    if isinstance(value, Dataset):
        return _stack(fn, value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(t, torch.Tensor) for t in value)):
        return value[0], value[1]
    raise fail(fn, f"{_FORMS} ({what} as a pair of tensors (xs, ys) or a Dataset)",
               type(value).__name__)


def _kind(fn: str, xs: torch.Tensor, ys: torch.Tensor) -> str:
    if xs.is_floating_point() and xs.dim() == 3 and ys.dim() == 1:
        return "regression" if ys.is_floating_point() else "classification"
    if not xs.is_floating_point() and xs.dim() == 2 and ys.shape == xs.shape:
        return "language"
    raise fail(fn, "float xs (n, T, D) with ys (n,), or token ids xs (n, T) with ys (n, T)",
               f"xs {xs.dtype} {tuple(xs.shape)}, ys {ys.dtype} {tuple(ys.shape)}")


def _split(fn: str, name: str, kind: str, xs: torch.Tensor, ys: torch.Tensor, split: str
           ) -> SequenceDataset:
    if xs.shape[0] != ys.shape[0] or xs.shape[0] == 0:
        raise fail(fn, f"a {split} split of n > 0 examples in xs and ys alike",
                   f"xs {tuple(xs.shape)}, ys {tuple(ys.shape)}")
    if kind == "classification" and (ys.is_floating_point() or ys.dtype == torch.bool
                                     or int(ys.min()) < 0):
        raise fail(fn, "class labels as non-negative integers", f"ys {ys.dtype}")
    xs = xs.detach().to("cpu", torch.float32) if xs.is_floating_point() else xs.detach().cpu()
    ys = ys.detach().to("cpu", torch.float32) if ys.is_floating_point() else ys.detach().cpu()
    if kind != "regression":
        xs = xs.long() if not xs.is_floating_point() else xs
        ys = ys.long()
    return SequenceDataset(xs.contiguous(), ys.contiguous(),
                           f"user task {name!r}, {split} split, {xs.shape[0]} examples")


def _pool(out: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    if isinstance(out, Dataset):
        return None
    if (isinstance(out, (tuple, list)) and len(out) == 2
            and all(isinstance(t, torch.Tensor) for t in out)):
        return out[0], out[1]
    return None


def user_task_data(name: str, kind: str | None, out: Any) -> TaskData:
    """What the loader of user task ``name`` returned, as a :class:`TaskData` (NOTE [User task
    data]); anything else is refused in one line."""
    fn = f"register_task loader {name!r}"
    if isinstance(out, TaskData):
        if kind is not None and out.kind != kind:
            raise fail(fn, f"TaskData of kind {kind!r} (as registered)", repr(out.kind))
        return replace(out, name=name)
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    rule = ""
    if isinstance(out, Mapping):
        bad = sorted(set(map(str, out)) - {"train", "val", "test"})
        if bad or not {"train", "val"} <= set(out):
            raise fail(fn, "splits train, val and optionally test", ", ".join(map(str, out)))
        splits = {s: _pair(fn, s, out[s]) for s in ("train", "val", "test") if s in out}
    elif isinstance(out, Dataset) or _pool(out) is not None:
        xs, ys = _stack(fn, out) if isinstance(out, Dataset) else _pair(fn, "data", out)
        to_val = torch.arange(xs.shape[0]) % 5 == 4
        splits = {"train": (xs[~to_val], ys[~to_val]), "val": (xs[to_val], ys[to_val])}
        rule = "; one pool split by index % 5 == 4 -> val, no test split"
    else:
        raise fail(fn, _FORMS, type(out).__name__)
    found = _kind(fn, *splits["train"])
    if kind is not None and found != kind:
        raise fail(fn, f"data of kind {kind!r} (as registered)", f"data of kind {found!r}")
    for s, (xs, ys) in splits.items():
        if _kind(fn, xs, ys) != found or xs.shape[1:] != splits["train"][0].shape[1:]:
            raise fail(fn, f"a {s} split shaped as the train split",
                       f"xs {tuple(xs.shape)} against {tuple(splits['train'][0].shape)}")
    ds = {s: _split(fn, name, found, xs, ys, s) for s, (xs, ys) in splits.items()}
    train, val, test = ds["train"], ds["val"], ds.get("test")
    sizes = ", ".join(f"{s} {len(d)}" for s, d in ds.items())
    desc = f"user task {name!r} ({found}): {sizes}{rule}"
    if found == "classification":
        c = 1 + max(int(d.ys.max()) for d in ds.values())
        return TaskData(name, "classification", train, val, test, desc,
                        input_size=int(train.xs.shape[-1]), num_classes=c)
    if found == "regression":
        return TaskData(name, "regression", train, val, test, desc,
                        input_size=int(train.xs.shape[-1]))
    v = 1 + max(max(int(d.xs.max()), int(d.ys.max())) for d in ds.values())
    return TaskData(name, "language", train, val, test, desc, vocab_size=v)


def _update(h: Any, *parts: bytes) -> None:
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)


def _tensor(h: Any, role: str, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    _update(h, role.encode(), str(t.dtype).encode(), repr(tuple(t.shape)).encode(),
            t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy()
            .tobytes())


def task_fingerprint(data: TaskData) -> str:
    r"""SHA-256 hex of a task's data: its kind, sizes, and every split's tensors (dtype, shape and
    bytes; a streamed split by its files' digests). Equal data give equal fingerprints."""
    h = hashlib.sha256()
    _update(h, data.kind.encode(), repr((data.input_size, data.num_classes, data.vocab_size,
                                          data.bptt)).encode())
    for role, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        if isinstance(split, SequenceDataset):
            _tensor(h, f"{role}.xs", split.xs)
            _tensor(h, f"{role}.ys", split.ys)
        elif isinstance(split, TokenStream):
            _tensor(h, f"{role}.ids", split.ids)
        elif isinstance(split, StreamedTokens):
            for path, n in zip(split.files, split.per_file):
                _update(h, role.encode(), str(n).encode(),
                        file_sha256("data_identity", path)[1].encode())
        else:
            _update(h, f"{role}.none".encode())
    return h.hexdigest()
