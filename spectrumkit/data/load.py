r"""The one entry point of training and studies: :func:`load_task`, over the task registry.

Legend: n = examples, T = steps, D = input size, V = vocabulary.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ..errors import check_keys, fail
from ._user import user_task_data
from .containers import TaskData
from .tasks import get_task, spec_defaults, validate_options

__all__ = ["load_task"]


def _builtin_loader(target: str) -> Callable[[str, Any, dict[str, Any]], TaskData]:
    module, _, attr = target.partition(":")
    return cast(Callable[[str, Any, dict[str, Any]], TaskData],
                getattr(importlib.import_module(module), attr))


def load_task(name: str, *, root: str | Path | None = None, **options: Any) -> TaskData:
    r"""Load a task by name with its options; the single entry point of training and studies.

    =============  ==============  ===========================================================
    name           kind            options (defaults)
    =============  ==============  ===========================================================
    ``seq-mnist``  classification  variant="row", scale="unit", permutation_seed=0,
                                   limit=None (first n train examples), val_limit=None,
                                   split_rule="default" ("authors": 63k/7k, no test; NOTE
                                   [The authors' split], root required)
    ``wikitext``   language        max_vocab=None, bptt=35, limit=None (first n train tokens)
    ``adding``     regression      T=50, n_train=10000, n_val=1000, n_test=1000, seed=0
    ``copy``       language        T=10, delay=20, n_train=10000, n_val=1000, n_test=1000,
                                   seed=0 (per-step targets; trained as independent sequences)
    ``wikitext-``  language        max_vocab=None, bptt=35, limit=None (first n train tokens,
    ``103``                        vocabulary included); root required, training streamed
    ``1b``         language        max_vocab=100000, bptt=35, limit=None (as wikitext-103),
                                   sample=False (True: a small corpus in the 1b layout)
    =============  ==============  ===========================================================

    ``root`` is for ``seq-mnist`` and ``wikitext`` (None = bundled, NOTE [Bundled data]; a root
    holding a ``wikitext-2/`` folder reads it), ``wikitext-103`` and ``1b`` (One Billion Words);
    the last two are read by :mod:`spectrumkit.data.corpora` (NOTE [One Billion Words layout], NOTE
    [WikiText-103 layout]) and their training split is a streamed
    :class:`~spectrumkit.data.StreamedTokens`.
    The synthetic tasks draw train, then val, then test from one generator seeded with ``seed``.
    Unknown option names are refused, and every option is checked against the task's declared
    options (:mod:`spectrumkit.data.tasks`, NOTE [Task options]) before anything is read.

    A task added with :func:`~spectrumkit.data.register_task` (or named by an import path
    ``"module:function"``, NOTE [Your own task]) calls its loader with its options (no ``root``)
    and converts what it returns (:func:`~spectrumkit.data.user_task_data`): a
    :class:`TaskData`; a mapping ``{"train": ..., "val": ..., "test": ...}`` (test optional) of
    ``(xs, ys)`` tensor pairs or Datasets; one ``(xs, ys)`` pair; or one
    ``torch.utils.data.Dataset`` of ``(x, y)`` pairs. One pool is split as the bundled MNIST is:
    example i goes to val when ``i % 5 == 4`` (no test split).

    >>> task = load_task("adding", T=10, n_train=4, n_val=2, n_test=2)
    >>> task.kind, task.input_size, len(task.train), tuple(task.val.xs.shape)
    ('regression', 2, 4, (2, 10, 2))
    """
    fn = "load_task"
    spec = get_task(fn, name, resolve=True)
    check_keys(fn, f"options for {name}", options, spec.option_names)
    o = {**spec_defaults(spec), **validate_options(fn, spec, options)}
    if not spec.takes_root and root is not None:
        what = "synthetic" if spec.builtin else "user"
        raise fail(fn, f"root=None for the {what} task {name!r}", repr(root))
    if isinstance(spec.loader, str):
        return _builtin_loader(spec.loader)(spec.name, root, o)
    return user_task_data(spec.name, spec.kind, spec.loader(**o))
