"""A griffe extension for the API pages: doctest blocks in docstrings become fenced code.

The package's docstrings carry checked examples (``>>>`` lines and their output) in running text.
Markdown would read ``>>>`` as nested quotes and ``[1, 2]`` as a link reference, so each run of
doctest lines, up to the next blank line, is fenced as Python before rendering.
"""

from __future__ import annotations

import griffe


def _fence(text: str) -> str:
    out: list[str] = []
    block: list[str] = []
    indent = ""

    def flush() -> None:
        if block:
            out.append(f"{indent}```python")
            out.extend(block)
            out.append(f"{indent}```")
            block.clear()

    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            if not block:
                indent = line[: len(line) - len(stripped)]
            block.append(line)
        elif block and stripped:
            block.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    """Fence the doctest blocks of every docstring that griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: object) -> None:  # noqa: D102
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = _fence(obj.docstring.value)
