r"""One self-contained HTML page per study, ``OUT/<study>/report.html`` (Jinja2).

NOTE [Report page]
The page holds what a reader needs to judge a study without opening another file: the study, its
preset, overrides and resolved spec; every table the run wrote (the summaries and the paper-style
tables, bold cells as in the Markdown); every figure, as a PNG embedded in base64 so the page works
offline and from a copied folder; the failed and diverged trials with their one-line errors and
log paths (relative, so they stay valid when the folder is copied); and each trial's reproduce
line, read from its log (NOTE [Reproduce a trial] in :mod:`spectrumkit.study.trial`). It is made
from the files of that run only (NOTE [No stale outputs]), and written atomically.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._io import write_text_atomic
from ..study.results import StudyResults
from ..study.tables import Table, table_caption, table_grid
from .outputs import REPORT_PAGE

__all__ = ["FIGURE_CAPTIONS", "figure_png", "finish_report", "report_page", "write_report"]

_BAND = "bands: ± 1 std over the seeds (n in the legend)"
#: What each figure shows, under its image on the page.
FIGURE_CAPTIONS = {
    "anatomy": "kept fraction per gate and block (colour: gate; plain: input, hatched: "
               "recurrent), mean over seeds; second panel: the I/R ratio per method (∞: no "
               "recurrent weight kept).",
    "sv_hist": "histogram of the singular values of the recurrent Jacobian at initialization and "
               "after training, pooled over seeds; dashed: the mean σ̄.",
    "connection_maps": "kept connections of one mask (the lowest seed) per condition.",
    "curves": f"training curves, mean over seeds; {_BAND}.",
    "lyapunov": f"Lyapunov spectrum, mean over seeds; {_BAND}.",
    "spectrum_steps": f"mean singular value per step, mean over seeds; {_BAND}.",
}


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    w, h = struct.unpack(">II", png[16:24])
    return int(w), int(h)


def _paper_table(stem: str, table: Table, folder: Path, root: Path) -> dict[str, Any]:
    body = [[(line[0], False)] + [(c.replace("**", ""), c.startswith("**")) for c in line[1:]]
            for line in table_grid(table, latex=False)]  # bold: NOTE [Best in bold]
    files = sorted(p.relative_to(root).as_posix() for p in folder.glob(f"{stem}.*"))
    return {"title": table.title, "caption": table_caption(table), "files": files,
            "head": [table.rows] + list(table.col_labels), "body": body}


def _summary_tables(root: Path, summaries: Sequence[Path]) -> list[dict[str, Any]]:
    out = []
    for p in summaries:
        if p.suffix != ".csv" or p.name.endswith("_long.csv"):
            continue
        rows = list(csv.reader(io.StringIO(p.read_text(encoding="utf-8"))))
        if not rows:
            continue
        md = p.with_suffix(".md")
        lines = md.read_text(encoding="utf-8").splitlines() if md.is_file() else []
        title = lines[0].lstrip("# ") if lines else p.stem
        caption = lines[2] if len(lines) > 2 else ""
        files = sorted(q.relative_to(root).as_posix() for q in p.parent.glob(f"{p.stem}*")
                       if q.stem in (p.stem, f"{p.stem}_long"))
        out.append({"title": f"summary: {title}", "caption": caption, "files": files,
                    "head": rows[0], "body": [[(c, False) for c in r] for r in rows[1:]]})
    return out


def _reproduce(log: Path) -> str:
    """The trial's ``reproduce:`` line from its log, or why there is none."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    lines = [ln.split("reproduce: ", 1)[1] for ln in text.splitlines() if "reproduce: " in ln]
    return lines[-1].strip() if lines else "(no reproduce line in the log: a custom trial kind)"


def _trials(res: StudyResults) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, problems = [], []
    seen = set()
    for t in res.trials:
        key = str(t.get("key", ""))
        if key in seen:  # a row study lists a trial once per row it belongs to
            continue
        seen.add(key)
        log = f"logs/{key}.log"
        row = {"key": key[:12], "label": res.label(res.condition(t)),
               "seed": t["config"].get("seed"), "status": t.get("status"),
               "reproduce": _reproduce(res.path / log), "log": log}
        rows.append(row)
        if t.get("status") in ("failed", "diverged"):
            err = t.get("error") or (f"diverged at step {t['metrics']['diverged_at_step']}"
                                     if (t.get("metrics") or {}).get("diverged_at_step")
                                     else t.get("status"))
            problems.append({**row, "error": " ".join(str(err).split())[:300]})
    return rows, problems


def report_page(res: StudyResults, *, figures: Mapping[str, bytes],
                tables: Sequence[tuple[str, Table]], summaries: Sequence[Path] = (),
                no_figures: str = "No figure was drawn in this run.") -> str:
    r"""The study's report page as HTML text (NOTE [Report page]).

    ``figures``: figure name → PNG bytes; ``tables``: the paper-style tables with their file stems;
    ``summaries``: the study run's summary files (``tables/summary*``) written in this run.
    """
    import jinja2

    from .._version import VERSION as __version__

    env = jinja2.Environment(loader=jinja2.PackageLoader("spectrumkit.figures", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    spec = res.spec
    statuses: dict[str, int] = {"ok": 0, "diverged": 0, "failed": 0}
    for t in {str(t.get("key")): t for t in res.trials}.values():
        statuses[str(t.get("status"))] = statuses.get(str(t.get("status")), 0) + 1
    overrides = [str(o.get("set", o)) if isinstance(o, Mapping) else str(o)
                 for o in spec.get("overrides") or []]
    study = {"name": res.name, "preset": spec.get("preset", "?"), "seeds": spec.get("seeds", "?"),
             "total": len(spec.get("keys") or []), "source": spec.get("source", "?"),
             "description": " ".join(str(spec.get("description") or "").split()),
             "overrides": overrides, "statuses": statuses, "version": __version__,
             "spec_json": json.dumps(spec, indent=1, ensure_ascii=False)}
    figs = []
    for name, png in figures.items():
        w, h = _png_size(png)
        scale = min(1.0, 1100 / w)  # shown at most 1100 px wide; the full resolution is kept
        figs.append({"name": name, "png": base64.b64encode(png).decode("ascii"),
                     "width": round(w * scale), "height": round(h * scale),
                     "caption": FIGURE_CAPTIONS.get(name, "")})
    trials, problems = _trials(res)
    tabs = [_paper_table(stem, t, res.path / "tables", res.path) for stem, t in tables]
    tabs += _summary_tables(res.path, sorted(summaries, key=lambda p: (p.stem != "summary",
                                                                        p.name)))
    return env.get_template("report.html.j2").render(
        study=study, tables=tabs, figures=figs, problems=problems, trials=trials,
        no_figures=no_figures)


def write_report(res: StudyResults, **kwargs: Any) -> Path:
    """Write :func:`report_page` to ``OUT/<study>/report.html`` atomically; return its path."""
    return write_text_atomic(res.path / REPORT_PAGE, report_page(res, **kwargs))


def figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes, as :func:`~spectrumkit.figures.save_figure` writes it."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, metadata={"Software": None})  # page size: ~1000 px
    return buf.getvalue()


def finish_report(res: StudyResults, made: list[Path], *, figures: dict[str, bytes],
                  tables: list[tuple[str, Table]], summaries: bool,
                  no_figures: str = "No figure was drawn in this run.") -> Path:
    r"""Remove the report files this run did not make, say so, and write ``report.html``.

    ``made``: the files written in this run; ``summaries``: whether the study's summaries are
    among the files to check (a study run) or left alone (``spectrumkit figures``). NOTE [No
    stale outputs], NOTE [Report page].
    """
    import warnings

    from ..study.store import StudyWarning
    from .outputs import remove_stale, toolkit_outputs

    keep = [*made, res.path / REPORT_PAGE]
    removed = remove_stale(res.path, keep, summaries=summaries)
    if removed:
        warnings.warn(f"removed {len(removed)} report file(s) not made from the current spec: "
                      f"{', '.join(p.relative_to(res.path).as_posix() for p in removed)}",
                      StudyWarning, stacklevel=3)
    current = [p for p in toolkit_outputs(res.path) if p.name.startswith("summary")]
    return write_report(res, figures=figures, tables=tables, summaries=current,
                        no_figures=no_figures)
