"""The options each data task takes, checked when a run configuration is built.

A minimal check of a task's options by name, used by :class:`~spectrumkit.config.DataConfig` so
that a configuration whose data options its task does not take is refused when it is built (a
study at load), not when its trial runs. It knows the option names of every built-in task, as
:func:`spectrumkit.data.load_task` accepts them; the values are judged by the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import check_choice, check_keys

__all__ = ["TASK_OPTIONS", "check_task_options"]

#: The option names of every built-in task (``load_task``'s table).
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "seq-mnist": ("variant", "scale", "permutation_seed", "limit", "val_limit", "split_rule"),
    "wikitext": ("max_vocab", "bptt", "limit"),
    "adding": ("T", "n_train", "n_val", "n_test", "seed"),
    "copy": ("T", "delay", "n_train", "n_val", "n_test", "seed"),
    "wikitext-103": ("max_vocab", "bptt", "limit"),
    "1b": ("max_vocab", "bptt", "limit", "sample"),
}


def check_task_options(task: str, options: Mapping[str, Any]) -> None:
    """Refuse a task that is not built in, or an option its loader does not take.

    >>> check_task_options("adding", {"T": 10})
    >>> try:
    ...     check_task_options("wikitext", {"scale": "paper"})
    ... except ValueError as e:
    ...     print(e)
    load_task: expected options for wikitext among max_vocab, bptt, limit, got scale
    """
    fn = "load_task"
    check_choice(fn, "task name", task, tuple(TASK_OPTIONS))
    check_keys(fn, f"options for {task}", options, TASK_OPTIONS[task])
