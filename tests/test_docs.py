"""The repository speaks of the toolkit only, and the docs' Python examples run."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Words about how the code was made rather than what it does.
PROCESS_WORDS = re.compile(
    r"\bissues? ?#?\d+|\bdefects? ?#?\d+|\bengineers?\b|\bhelpers? (?:agent|engineer)|"
    r"shared 2-core machine|busy with|\bload (?:about|of) \d",
    re.IGNORECASE)

#: Where the project's own words live.
SCANNED = ("spectrumkit", "docs", "tests", "benchmarks", "README.md", "CHANGELOG.md",
           "pyproject.toml", "mkdocs.yml", ".ci")
SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".sh", ".txt", ".cff", ".html", ".j2", ""}


def _files():
    for name in SCANNED:
        p = ROOT / name
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix in SUFFIXES and "__pycache__" not in f.parts:
                    yield f


def test_no_file_speaks_of_how_it_was_made():
    hits = []
    for f in _files():
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if PROCESS_WORDS.search(line) and f.name != "test_docs.py":
                hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)


def test_help_texts_send_no_reader_to_a_source_comment(cli):
    from spectrumkit.cli import main

    import click

    ctx = click.Context(main)  # the subcommands are imported on first use (NOTE [Lazy commands])
    commands = [[]] + [[name] for name in main.list_commands(ctx)]
    study = main.get_command(ctx, "study")
    commands += [["study", name] for name in study.list_commands(ctx)]  # type: ignore[union-attr]
    texts = {" ".join(c): cli(*c, "--help").ok().stdout for c in commands}
    bad = {c: t for c, t in texts.items() if "NOTE [" in t or "NOTE[" in t}
    assert not bad, list(bad)


def test_readme_is_a_quick_start_of_at_most_150_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, len(lines)


def test_readme_links_to_docs_that_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#]+)", text)
    assert targets
    missing = [t for t in targets if not (ROOT / t).is_file()]
    assert not missing, missing


@pytest.mark.slow
def test_the_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "reproduction" / "index.html").is_file()
