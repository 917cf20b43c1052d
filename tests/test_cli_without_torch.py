"""``spectrumkit --help``, ``study list`` and ``study show NAME`` start without torch
(NOTE [Lazy commands] in cli/_lazy.py): each runs in a fresh interpreter, which then reports
whether torch was imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

_PROBE = """
import sys
from spectrumkit.cli import main
try:
    main(sys.argv[1:], prog_name="spectrumkit")
except SystemExit as e:
    code = e.code
print("exit", code, "torch", "torch" in sys.modules, file=sys.stderr)
"""

@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--help"], ["study", "list"], ["study", "show", "init-ablation"]],
                         ids=["help", "study-list", "study-show"])
def test_the_command_imports_no_torch(argv):
    r = subprocess.run([sys.executable, "-c", _PROBE, *argv], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, check=False)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("exit 0 torch") and r.stdout, r.stderr
    assert last == "exit 0 torch False", r.stderr
