"""Init-scheme strings, parsed without torch: ``normal:0.1``, ``glorot;bias=zero``, ...

:mod:`spectrumkit.init` draws the parameters; this module reads the scheme a user wrote, so that a
run configuration (``ModelConfig.init``) is checked without importing torch (NOTE [Lazy commands]
in ``cli/_lazy.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ._cell_names import BLOCKS, tensor_names
from .choices import INIT_SCHEMES
from .errors import fail

__all__ = ["AUTHORS_GRU_INIT", "GRAMMAR", "Scheme", "parse_scheme", "parse_spec"]

#: The grammar of a scheme spec, for messages.
GRAMMAR = (" | ".join(INIT_SCHEMES) + " | normal:STD | uniform:A,B | constant:C | "
           "constant:C1,...,CG, optionally followed by ';block=scheme' overrides "
           "(blocks: input, recurrent, cell, bias; or a tensor name such as bias_ih)")

#: The init of the GRU the paper's authors scored, in distribution, for ``gru_cho`` (NOTE [The
#: authors' GRU] in interop.py): every weight N(0, 0.07²); the +0.1 on every pre-activation as
#: ``bias_ih`` with z's negated (gru_cho's z is 1 - theirs); ``bias_hh`` zero.
AUTHORS_GRU_INIT = "normal:0.07;bias_ih=constant:0.1,-0.1,0.1"

@dataclass(frozen=True)
class Scheme:
    """One parsed scheme: a kind and its numeric arguments."""

    kind: str
    args: tuple[float, ...] = ()

    def __str__(self) -> str:
        return self.kind + (":" + ",".join(f"{a:g}" for a in self.args) if self.args else "")


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_scheme(text: str) -> Scheme:
    """Parse one scheme string such as ``normal:0.1`` or ``uniform:0,0.1``.

    >>> parse_scheme("uniform:0,0.1")
    Scheme(kind='uniform', args=(0.0, 0.1))
    """
    if not isinstance(text, str):
        raise fail("parse_scheme", f"a scheme string ({GRAMMAR})", repr(text))
    t = text.strip()
    if t == "xavier":  # the other name of glorot
        return Scheme("glorot")
    if t in INIT_SCHEMES:
        return Scheme(t)
    m = re.fullmatch(rf"normal:({_NUM})", t)
    if m:
        std = float(m.group(1))
        if std < 0:
            raise fail("parse_scheme", "normal:STD with STD >= 0", repr(text))
        return Scheme("normal", (std,))
    m = re.fullmatch(rf"uniform:({_NUM}),({_NUM})", t)
    if m:
        a, b = float(m.group(1)), float(m.group(2))
        if not a <= b:
            raise fail("parse_scheme", "uniform:A,B with A <= B", repr(text))
        return Scheme("uniform", (a, b))
    m = re.fullmatch(rf"constant:({_NUM}(?:,{_NUM})*)", t)
    if m:
        return Scheme("constant", tuple(float(v) for v in m.group(1).split(",")))
    raise fail("parse_scheme", f"a scheme of the form {GRAMMAR}", repr(text))


def parse_spec(scheme: str | Mapping[str, str], bias: str | None,
               tensors: set[str] | None = None) -> dict[str, Scheme]:
    """Resolve a scheme spec into one Scheme per block, plus one per tensor override.

    ``tensors``: the tensor names an override may name (the cell's); None admits the tensor names
    of every built-in cell (for validating a spec before the cell is known).
    """
    tensors = tensor_names() if tensors is None else set(tensors)
    items: dict[str, str] = {}
    if isinstance(scheme, Mapping):
        items = {str(k): v for k, v in scheme.items()}
    elif isinstance(scheme, str):
        for i, part in enumerate(p.strip() for p in scheme.split(";")):
            if "=" in part:
                k, v = part.split("=", 1)
                items[k.strip()] = v.strip()
            elif i == 0:
                items["default"] = part
            else:
                raise fail("init_params", f"a scheme of the form {GRAMMAR}", repr(scheme))
    else:
        raise fail("init_params", f"a scheme string ({GRAMMAR}) or a dict", repr(scheme))
    unknown = sorted(set(items) - {"default", *BLOCKS, *tensors})
    if unknown:
        raise fail("init_params", f"override blocks among default, {', '.join(BLOCKS)} or tensors "
                   f"among {', '.join(sorted(tensors - set(BLOCKS)))} ({GRAMMAR})", unknown)
    if bias is not None:
        items["bias"] = bias
    default = parse_scheme(items.get("default", "glorot"))
    out = {b: parse_scheme(items[b]) if b in items else default for b in BLOCKS}
    if "bias" not in items:
        out["bias"] = default if default.kind == "torch" else Scheme("zero")
    for t in sorted(set(items) - {"default", *BLOCKS}):
        out[t] = parse_scheme(items[t])
    return out

