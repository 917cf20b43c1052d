r"""A study's results as one table file: one row per stored trial, in CSV or Parquet.

The rows are those of :func:`~spectrumkit.study.store.collect` (the one definition of the study
table): ``key, study, status, error``, the flat configuration (``flat_config``: dicts as canonical
JSON, lists joined by commas), every metric (``metric.NAME`` where a metric shares a config
field's name) and ``device``. Rows are sorted by key.

NOTE [One schema for CSV and Parquet]
CSV carries no types, so the table's types are defined as those that CSV text reads back as:
the frame is written to CSV text once, and that text read back by :func:`read_table`'s rule
(``key, study, status, error`` as strings, only empty fields missing) is
the frame. The CSV file is that text; the Parquet file is that frame. Hence
``read_table(x.csv)`` and ``pandas.read_parquet(x.parquet)`` give equal frames, dtypes included:
a column that is empty in every row is float64 NaN in both, an integer column with a missing entry
is float64 in both. The rule in pandas terms, for users without spectrumkit::

    pandas.read_csv(path, dtype={"key": str, "study": str, "status": str, "error": str},
                    keep_default_na=False, na_values=[""])
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import pandas as pd

from .._io import check_output_file, write_atomic
from ..errors import check_choice, fail
from .store import collect

__all__ = ["TABLE_FORMATS", "export_table", "read_table", "trial_table"]

#: Accepted ``format`` values of :func:`export_table`.
TABLE_FORMATS = ("csv", "parquet")
TableFormat = Literal["csv", "parquet"]

#: Columns read as text whatever they look like (a key could be all digits).
TEXT_COLUMNS = ("key", "study", "status", "error")


def _read_csv(source: str | Path | io.StringIO) -> pd.DataFrame:
    head = pd.read_csv(source, nrows=0)
    if isinstance(source, io.StringIO):
        source.seek(0)
    dtype = {c: str for c in TEXT_COLUMNS if c in head.columns}
    return pd.read_csv(source, dtype=dtype, keep_default_na=False, na_values=[""])


def _csv_and_frame(study_dir: str | Path, fn: str) -> tuple[str, pd.DataFrame]:
    table = collect(study_dir)
    if table.empty:
        raise fail(fn, "a study folder with at least one stored trial in trials/",
                   f"none in {study_dir}")
    table = table.sort_values("key", kind="stable").reset_index(drop=True)
    text = table.to_csv(index=False, lineterminator="\n")
    return text, _read_csv(io.StringIO(text))


def trial_table(study_dir: str | Path) -> pd.DataFrame:
    """The study folder ``OUT/NAME`` as a typed frame, one row per stored trial, sorted by key
    (NOTE [One schema for CSV and Parquet]): what :func:`export_table` writes."""
    return _csv_and_frame(study_dir, "trial_table")[1]


def _require_pyarrow(fn: str) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise fail(fn, "pyarrow for the parquet format (pip install 'spectrumkit[parquet]')",
                   "no pyarrow installed") from None


def export_table(study_dir: str | Path, out: str | Path, format: TableFormat = "csv") -> Path:
    """Write a study's trials as one table file, one row per trial; return its path.

    Args:
        study_dir: a study's result folder ``OUT/NAME`` (holding ``trials/``).
        out: the file to write (atomically; an existing regular file is replaced).
        format: ``"csv"`` or ``"parquet"`` (needs the ``parquet`` extra, pyarrow).

    The columns and their types: module docstring and NOTE [One schema for CSV and Parquet].
    Raises :class:`SpectrumkitError` for an unknown format, a missing pyarrow, a folder without
    stored trials, or an output path that cannot be written.
    """
    fn = "export_table"
    check_choice(fn, "format", format, TABLE_FORMATS)
    if format == "parquet":
        _require_pyarrow(fn)
    path = check_output_file(fn, out)
    text, frame = _csv_and_frame(study_dir, fn)
    if format == "csv":
        return write_atomic(path, lambda f: f.write(text.encode("utf-8")))
    return write_atomic(path, lambda f: frame.to_parquet(f, engine="pyarrow", index=False))


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a file written by :func:`export_table` (CSV or Parquet, by its suffix) into the frame
    it holds; ``.csv`` and ``.parquet`` of one study give equal frames."""
    p = Path(path)
    if p.suffix == ".parquet":
        _require_pyarrow("read_table")
        return pd.read_parquet(p, engine="pyarrow")
    if p.suffix == ".csv":
        return _read_csv(p)
    raise fail("read_table", "a .csv or .parquet file", repr(str(path)))
