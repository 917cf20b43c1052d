r"""Data for training: sequential MNIST, WikiText language modelling, synthetic memory tasks.

Legend: n = examples, T = steps, D = input size, B = batch, V = vocabulary.

Every loader returns plain tensors in small frozen dataclasses with a ``description`` that says
exactly what the data is (which files, which split rule, which scale), so that every output of a
run can carry it. :func:`load_task` is the single entry point the trainer, the studies and the CLI
use; it returns a :class:`TaskData` with ``train``, ``val`` and ``test`` splits. It reads ONE task
registry (:mod:`spectrumkit.data.tasks`, importable without torch): each task's kind, options
(names, types, defaults; :func:`check_task_options`) and loader. :func:`register_task` adds your
own task (NOTE [Your own task]).

The modules, one concept each: ``containers`` (:class:`SequenceDataset`, :class:`TokenStream`,
:class:`WikiText`, :class:`TaskData`), ``mnist``, ``wikitext2``, ``synthetic`` (adding, copy),
``corpora`` (One Billion Words and WikiText-103, streamed), ``windows`` (:func:`batchify`,
``bptt_*``, :func:`sample_batch`), ``vocab``, ``identity`` (:func:`data_identity`), ``tasks``
(the registry) and ``load`` (:func:`load_task`); the private ``_files`` (bundled files),
``_layouts`` (where a root's files lie), ``_idx``, ``_digest``, ``_stream`` and ``_user``.

NOTE [Bundled data]
Without ``root=`` the loaders read the data shipped in ``spectrumkit/_bundled`` (package data, so
a non-editable install works offline; licences and sha256 sums in its README, checked on every
load):

* MNIST: only the official 10k *test* set is bundled. It is split deterministically into 8,000
  train and 2,000 validation examples: example i goes to validation when ``i % 5 == 4``. An
  interleaved rule, not a contiguous cut, because the first 5,000 test digits (NIST SD-3) are
  cleaner than the last 5,000 (SD-1); the rule needs no RNG, so it never changes between torch or
  numpy versions. There is no test split in this mode (it would overlap).
* WikiText-2: only the ``valid`` and ``test`` splits are bundled. The model trains on the first 90 %
  of the lines of ``valid``, validates on the last 10 %, and is tested on ``test``; the vocabulary
  comes from that training part.

With ``root=`` the standard layouts are read (MNIST IDX files plain or gzipped, also torchvision's
``MNIST/raw``; WikiText ``{train,valid,test}.txt`` or ``wiki.{train,valid,test}.tokens``).
For full MNIST the validation split is the last 5,000 of the 60,000 training images, train is the
first 55,000, and test is the official 10k test set; the data option ``split_rule="authors"``
gives the authors' 63,000/7,000 split instead (NOTE [The authors' split] in ``mnist.py``).
:func:`data_identity` (NOTE [Data identity], in ``identity.py``) names the files' content; IDX
files are read with memory bounded by their header (NOTE [Bounded IDX reads], in ``_idx.py``).
WikiText-103 and One Billion Words (tasks ``wikitext-103`` and ``1b``) are read, streamed, by
:mod:`spectrumkit.data.corpora`.

NOTE [Lazy data package]
``spectrumkit.data`` imports its modules on first use of a name (PEP 562 ``__getattr__``), so that
``spectrumkit.data.tasks`` can be imported without torch: the study loader checks data options
with it in commands that never load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._idx import read_idx
    from ._stream import StreamedTokens
    from .containers import DEFAULT_BPTT, SequenceDataset, TaskData, TokenStream, WikiText
    from .corpora import write_1b_sample
    from .identity import data_identity
    from .load import load_task
    from .mnist import MNIST_MEAN, MNIST_STD, seq_mnist
    from .synthetic import adding_problem, copy_task
    from .tasks import (
        check_task_options,
        register_task,
        task_code_allowed,
        task_names,
        unregister_task,
    )
    from .wikitext2 import wikitext
    from .windows import batchify, bptt_batches, bptt_window, bptt_window_count, sample_batch

__all__ = [
    "DEFAULT_BPTT",
    "MNIST_MEAN",
    "MNIST_STD",
    "SequenceDataset",
    "StreamedTokens",
    "TaskData",
    "TokenStream",
    "WikiText",
    "adding_problem",
    "batchify",
    "bptt_batches",
    "bptt_window",
    "bptt_window_count",
    "check_task_options",
    "copy_task",
    "data_identity",
    "load_task",
    "read_idx",
    "register_task",
    "sample_batch",
    "seq_mnist",
    "task_code_allowed",
    "task_names",
    "unregister_task",
    "wikitext",
    "write_1b_sample",
]

#: Public name -> the module of this package that defines it (NOTE [Lazy data package]).
_WHERE: dict[str, str] = {
    "DEFAULT_BPTT": "containers",
    "SequenceDataset": "containers",
    "TaskData": "containers",
    "TokenStream": "containers",
    "WikiText": "containers",
    "StreamedTokens": "_stream",
    "MNIST_MEAN": "mnist",
    "MNIST_STD": "mnist",
    "seq_mnist": "mnist",
    "wikitext": "wikitext2",
    "adding_problem": "synthetic",
    "copy_task": "synthetic",
    "write_1b_sample": "corpora",
    "batchify": "windows",
    "bptt_batches": "windows",
    "bptt_window": "windows",
    "bptt_window_count": "windows",
    "sample_batch": "windows",
    "read_idx": "_idx",
    "data_identity": "identity",
    "load_task": "load",
    "check_task_options": "tasks",
    "register_task": "tasks",
    "task_code_allowed": "tasks",
    "task_names": "tasks",
    "unregister_task": "tasks",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
