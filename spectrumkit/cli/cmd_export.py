"""`spectrumkit study export`: a study's results as one table file (CSV or Parquet)."""

from __future__ import annotations

import click

from .cmd_study import study_cmd


@study_cmd.command("export")
@click.argument("study_dir", metavar="OUT/NAME")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="parquet needs the parquet extra (pyarrow)")
@click.option("--out", required=True, metavar="FILE", help="the table file to write")
def study_export_cmd(study_dir: str, fmt: str, out: str) -> None:
    """Write the stored trials of the study folder OUT/NAME as one table, one row per trial.

    \b
    Columns: key, study, status, error, the flat configuration (dicts as JSON, lists joined by
    commas), every metric, device; rows sorted by key. CSV and Parquet hold the same frame:
      pandas.read_parquet(FILE)  ==  spectrumkit.study.export.read_table(FILE.csv)
    (in plain pandas: read_csv with key/study/status/error as str, keep_default_na=False,
    na_values=[""]).
    Example: spectrumkit study export results/horizon --format parquet --out horizon.parquet
    """
    from ..study.export import export_table

    path = export_table(study_dir, out, fmt)  # type: ignore[arg-type]
    click.echo(f"wrote: {path}")
