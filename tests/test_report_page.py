"""The study report: never stale (a rerun makes every table and figure it lists) and one
self-contained page, ``OUT/<study>/report.html``, checked in a real browser (headless Chromium).

The runs use the stand-in trial ``tests/study_fake.py``: its metrics are closed-form
(``val_error_pct = hidden_size / 8 + 2 * seed + [method == random]``), so the tables are checked
against hand-computed values.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import markupsafe
import pytest

from tests.study_fake import expected_error

FAKE = "tests.study_fake:run"
ARTIFACTS = Path(os.environ.get("SPECTRUMKIT_TEST_ARTIFACTS", "test-artifacts"))


def fake_toml(tmp_path: Path, *, figures=("curves",), data="{}", lr_grid="",
              rows='"hidden_size"') -> Path:
    text = f"""
name = "fake"
description = "a stand-in study"
[grid]
hidden_size = [8, 16]
method = ["jacobian", "random"]
{lr_grid}
[fixed]
trial = "{FAKE}"
epochs = 1
data = {data}
[presets.quick]
seeds = 2
[report]
table = {{ rows = {rows}, cols = "method", metric = "val_error_pct" }}
figures = {json.dumps(list(figures))}
"""
    p = tmp_path / "fake.toml"
    p.write_text(text)
    return p


def _study(cli, toml: Path, out: Path, *extra: object):
    r = cli("study", toml, "--out", out, "--allow-trial-code", *extra)
    assert r.exit_code == 0, r.stdout + r.stderr
    return r


def _listed(stdout: str) -> list[str]:
    return [ln.strip() for ln in stdout.split("wrote:", 1)[1].splitlines() if ln.strip()]


def test_rerun_with_fewer_seeds_rewrites_every_table_and_figure(cli, tmp_path):
    toml, out = fake_toml(tmp_path), tmp_path / "out"
    _study(cli, toml, out, "--seeds", "2")
    d = out / "fake"
    assert "(n=2)" in (d / "tables" / "paper.md").read_text()
    user_file = d / "figures" / "notes.txt"  # not the toolkit's: left alone
    user_file.write_text("mine")
    old = d / "figures" / "anatomy.png"  # a figure the study no longer declares
    old.write_bytes(b"stale")
    made = [*(d / "figures").glob("curves.*"), *(d / "tables").iterdir(), d / "report.html"]
    for p in made:  # dated 1970: a file this run does not rewrite keeps that date
        os.utime(p, ns=(1, 1))
    r = _study(cli, toml, out, "--seeds", "1")  # nothing to run: every trial is done
    listed = _listed(r.stdout)
    md = (d / "tables" / "paper.md").read_text()
    # paper.md is rewritten from the one-seed spec: seed 0 only, hand-computed
    assert "(n=2)" not in md and "(n=1)" in md
    assert f"{expected_error(8, 0, 'jacobian'):.2f} ± – (n=1)" in md
    assert [p.name for p in made if p.stat().st_mtime_ns == 1] == []
    # every figure and table the run lists was written by this run
    figs = sorted(p.name for p in (d / "figures").iterdir())
    assert figs == ["curves.pdf", "curves.png", "notes.txt"]
    expected = {str(d / n) for n in ("spec.json", "figures/curves.pdf", "figures/curves.png",
                                    "report.html", "tables/paper.md", "tables/paper.tex",
                                    "tables/paper.csv", "tables/summary.md", "tables/summary.tex",
                                    "tables/summary.csv", "tables/summary_long.csv")}
    assert set(listed) == expected, set(listed) ^ expected
    assert "removed 1 report file(s) not made from the current spec: figures/anatomy.png" in (
        " ".join(r.stderr.split()))
    assert user_file.read_text() == "mine" and not old.exists()
    summary = (d / "tables" / "summary.md").read_text()
    assert "(n=2)" not in summary and "1 seed(s)" in summary


def test_a_linked_or_foreign_file_is_never_removed(cli, tmp_path):
    toml, out = fake_toml(tmp_path), tmp_path / "out"
    _study(cli, toml, out)
    d = out / "fake"
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"keep")
    (d / "figures" / "sv_hist.png").symlink_to(outside)  # a link with a toolkit name
    (d / "tables" / "paper-x.md").mkdir()                # a folder with a toolkit name
    _study(cli, toml, out)
    assert outside.read_bytes() == b"keep" and (d / "figures" / "sv_hist.png").is_symlink()
    assert (d / "tables" / "paper-x.md").is_dir()


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_report_page_holds_spec_tables_figures_failures_and_reproduce_lines(cli, tmp_path):
    # a diverged condition (lr = 10) beside ok ones, and the overrides recorded on the page
    toml = fake_toml(tmp_path, lr_grid="lr = [0.001, 10.0]", rows='["hidden_size", "lr"]')
    out = tmp_path / "out"
    _study(cli, toml, out, "--set", "presets.quick.seeds=1")
    d = out / "fake"
    page = (d / "report.html").read_text()
    assert "<h1>fake</h1>" in page and "preset <code>quick</code>" in page
    assert "--set presets.quick.seeds=1" in page
    spec = json.loads((d / "spec.json").read_text())
    assert str(markupsafe.escape(json.dumps(spec, indent=1, ensure_ascii=False))) in page
    # the table: the hand-computed cell of N=16, random, seed 0, lr 0.001
    assert f"{expected_error(16, 0, 'random'):.2f} ± – (n=1)" in page
    # the figure, embedded: a PNG whose header gives the size the img tag is scaled from
    pngs = _images(page)
    assert len(pngs) == 1 and pngs[0][:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", pngs[0][16:24])
    tag = re.search(r'<img [^>]*width="(\d+)" height="(\d+)"', page)
    assert tag and (int(tag[1]), int(tag[2])) == (min(w, 1100), round(h * min(1.0, 1100 / w)))
    # the diverged trials: four (two widths x two methods at lr 10), each with its log path
    keys = [k for k in spec["keys"]
            if json.loads((d / "trials" / f"{k}.json").read_text())["status"] == "diverged"]
    assert len(keys) == 4
    for k in keys:
        assert f'<a href="logs/{k}.log">' in page
    assert page.count('class="status-diverged">diverged</td><td>diverged at step 3') == 4
    # every trial is listed once; a custom trial kind has no reproduce line, and says so
    assert page.count("(no reproduce line in the log: a custom trial kind)") == 8
    assert "<script" not in page and "http://" not in page and "https://" not in page


# ------------------------------------------------------------------------------------ browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


BROWSER = _chromium()


def _need_browser() -> str:
    if BROWSER is None:
        if os.environ.get("CI") == "true":
            pytest.fail("headless Chromium is required in CI (.ci/browser installs it)")
        pytest.skip("no chromium on PATH (apt-get install chromium, or run .ci/browser)")
    return BROWSER


_PROBE = """
<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.title = 'PROBE images=' + imgs.length + ' broken=' + bad;
});
window.onerror = (m) => { document.title = 'PROBE error ' + m; };
</script>
"""


def _chrome(browser: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _console_errors(stderr: str) -> list[str]:
    """Lines of Chromium's log from the page's console, or of a failed load.

    Chromium logs every console message as ``INFO:CONSOLE`` whatever its level; the page holds
    no script, so any console line is an error the browser raised (a refused resource, a parse
    error), and counts as one.
    """
    return [ln for ln in stderr.splitlines()
            if ":CONSOLE" in ln or "net::ERR_" in ln or "Failed to load resource" in ln]


def test_console_error_lines_are_recognised():
    log = ('[1:1:1204/160506.245558:INFO:CONSOLE:1] "boom", source: file:///p.html (1)\n'
           "[1:2:1204/155522.293555:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n")
    assert _console_errors(log) == [log.splitlines()[0]]


@pytest.mark.slow
def test_report_page_loads_in_a_browser_with_every_image(cli, tmp_path):
    browser = _need_browser()
    toml, out = fake_toml(tmp_path), tmp_path / "out"
    _study(cli, toml, out)
    d = out / "fake"
    copy = tmp_path / "copied" / "fake"  # the page works from a copied folder, offline
    shutil.copytree(d, copy)
    shutil.rmtree(d)
    page = copy / "report.html"
    # the page itself: no console error, then a screenshot
    shot = ARTIFACTS / "report-fake.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    r = _chrome(browser, "--window-size=1280,2000", f"--screenshot={shot.resolve()}",
                page.as_uri())
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", r.stderr[-2000:]
    assert _console_errors(r.stderr) == []
    # every image loaded: the same page with a probe script, which writes its verdict into the
    # title of the DOM Chromium dumps (the page as shipped holds no script)
    probe = copy / "probe.html"
    probe.write_text(page.read_text().replace("</head>", _PROBE + "</head>", 1))
    r = _chrome(browser, "--dump-dom", "--virtual-time-budget=5000", probe.as_uri())
    title = re.search(r"<title>(.*?)</title>", r.stdout, re.S)
    n_img = page.read_text().count("<img ")
    assert title and title[1] == f"PROBE images={n_img} broken=0", (title, r.stderr[-2000:])
    assert n_img == 1 and _console_errors(r.stderr) == []
