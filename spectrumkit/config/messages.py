"""One-line messages of a configuration's validation errors (``fn: expected X, got Y``)."""

from __future__ import annotations

import re

from pydantic import ValidationError

__all__ = ["pydantic_message"]


def pydantic_message(fn: str, err: ValidationError, where: str = "") -> str:
    """One line ``fn: expected FIELD CONSTRAINT[ where], got VALUE`` from pydantic's first error."""
    e = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in e.get("loc", ()) if not isinstance(p, int)) or "value"
    msg = " ".join(str(e.get("msg", "")).split())
    where = f" {where}" if where else ""
    got = repr(e.get("input"))
    if e.get("type") == "value_error":
        inner = msg.removeprefix("Value error, ")
        # our own validators already speak 'field: expected X, got Y'
        m = re.match(r"(?:\w+: )?expected (.*), got (.*)$", inner)
        if m:
            what = f"{loc} to be {m.group(1)}" if loc != "value" else m.group(1)
            return f"{fn}: expected {what}{where}, got {m.group(2)}"
        return f"{fn}: expected a valid {loc}{where}, got {got} ({inner})"
    if e.get("type") == "extra_forbidden":
        return f"{fn}: expected known keys{where}, got unknown key {loc!r}"
    if e.get("type") == "missing":
        return f"{fn}: expected {loc} to be given{where}, got nothing"
    constraint = msg.removeprefix("Input should be ").removeprefix("input should be ")
    if constraint == msg:
        constraint = msg[:1].lower() + msg[1:]
    return f"{fn}: expected {loc} {constraint}{where}, got {got}"
