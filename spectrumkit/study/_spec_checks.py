"""The checks that the parts of a study file share: TOML parsing, known keys, the trial fields."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import SpectrumkitError, fail
from .config import TrialConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["DICT_FIELDS", "TOP_KEYS", "check_fields", "parse_toml", "trial_fields", "unknown_key"]

#: The sections of a study file.
TOP_KEYS = ("name", "description", "paper", "grid", "fixed", "presets", "report", "executor")
#: The trial fields whose value is a table: a table replaces the field, a dotted key
#: (``"data.scale" = "paper"``) sets one entry (NOTE [Study axes] in :mod:`.axes`).
DICT_FIELDS = ("data", "score_options")


def trial_fields() -> list[str]:
    """The keys a study may give a trial (the seed is the run's, as everywhere)."""
    return [f for f in TrialConfig.input_keys() if f != "seed"]


def unknown_key(fn: str, key: str, accepted: list[str], section: str, source: str
                ) -> SpectrumkitError:
    """``fn: expected a key of SECTION in SOURCE among A, B, ..., got unknown key 'K'``."""
    near = difflib.get_close_matches(key, accepted, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return fail(fn, f"a key of {section} in {source} among {', '.join(accepted)}",
                f"unknown key {key!r}{hint}")


def check_fields(fn: str, table: Mapping[str, Any], accepted: list[str], section: str,
                 src: str) -> None:
    """Refuse a key of ``table`` not in ``accepted``, naming the section and the accepted keys."""
    for k in table:
        if k not in accepted:
            raise unknown_key(fn, k, accepted, section, src)


def parse_toml(fn: str, text: str, source: str) -> dict[str, Any]:
    """The TOML document ``text``; a syntax error is one line naming ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise fail(fn, f"valid TOML in {source}", str(e)) from None
