"""`spectrumkit figures`: redraw a study's figures and tables from stored results."""

from __future__ import annotations

import click


@click.command("figures")
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--format", "formats", default="pdf,png", show_default=True,
              help="Comma-separated figure formats among pdf, png, svg.")
@click.option("--only", default=None, metavar="NAME[,NAME]",
              help="Render only these declared figures ('table' for the tables).")
def figures_cmd(results_dir: str, formats: str, only: str | None) -> None:
    """Regenerate a study's figures and tables from its stored results (nothing is recomputed).

    RESULTS_DIR is one study's folder OUT/<study> (holding spec.json and trials/), or OUT itself,
    in which case every study folder inside it is rendered. Without --only it also writes the
    study's page OUT/<study>/report.html and removes the figures and paper tables that the
    current spec.json no longer makes (each removal is named).
    """
    import warnings

    from .._io import check_output_dir
    from ..figures.rendering import render_all
    from ..study import StudyWarning
    from ..study.results import find_study_dirs

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"warning: {' '.join(str(message).split())}", err=True)

    for d in find_study_dirs(results_dir):  # NOTE [Output paths]: before anything is drawn
        check_output_dir("figures", d / "figures")
        check_output_dir("figures", d / "tables")
    names = None if only is None else [n.strip() for n in only.split(",") if n.strip()]
    with warnings.catch_warnings():  # what was left out, and why, on one line each
        warnings.simplefilter("always", StudyWarning)
        warnings.showwarning = show
        # NOTE [No stale outputs], NOTE [Report page]: a full redraw also writes report.html
        written = render_all(results_dir, only=names, formats=formats, report=names is None)
    for study, paths in written.items():
        for p in paths:
            click.echo(str(p))
    total = sum(len(p) for p in written.values())
    click.echo(f"wrote {total} files for {len(written)} "
               f"{'study' if len(written) == 1 else 'studies'}", err=True)
