r"""The bundled data files and finding a file among candidates: what every data set module reads.

The bundled files (NOTE [Bundled data] in :mod:`spectrumkit.data`) are package data; their pinned
SHA-256 digests are checked on every load, so a corrupt install is an error, not bad data.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import fail
from ._digest import file_sha256

__all__ = ["BUNDLED_SHA256", "bundled", "find"]

#: The bundled files (relative to ``spectrumkit/_bundled``) and their SHA-256 digests.
BUNDLED_SHA256 = {
    "mnist/t10k-images-idx3-ubyte.gz":
        "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    "mnist/t10k-labels-idx1-ubyte.gz":
        "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
    "wikitext-2/valid.txt.gz": "13a311129adfcd8bc4240c0a1bc87100acc8a79f5c07da65ccfb52d54b7e963e",
    "wikitext-2/test.txt.gz": "117429eaf70acf81a949f6a16724a9625d3d658989765ee75eeda330dce331fe",
}


def bundled(rel: str) -> Path:
    """Path of a bundled file, its sha256 checked (a corrupt install is an error, not bad data)."""
    path = Path(str(files("spectrumkit") / "_bundled" / rel))
    _, digest = file_sha256("spectrumkit data", path, persist=False)
    if digest != BUNDLED_SHA256[rel]:
        raise fail("spectrumkit data", f"bundled {rel} with sha256 {BUNDLED_SHA256[rel]}",
                   f"{digest} at {path} (reinstall spectrumkit)")
    return path


def find(fn: str, what: str, candidates: list[Path]) -> Path:
    """The first of ``candidates`` that is a file; else an error listing them all."""
    for p in candidates:
        if p.is_file():
            return p
    raise fail(fn, f"{what} at one of: {', '.join(map(str, candidates))}", "none of them")
