"""One edit per field: a field added to the training part reaches `spectrumkit train --help`, the
configuration's schema, the trial key and the reproduce line, with no other edit."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = r"""
import json, sys
from click.testing import CliRunner
from spectrumkit.cli import main
from spectrumkit.config import RunConfig, trial_key
from spectrumkit.config.flags import train_command
ident = {"source": "bundled", "fingerprint": "x"}
help = CliRunner().invoke(main, ["train", "--help"], terminal_width=200).output
schema = RunConfig.model_json_schema()
def key(**kw):
    try:
        return trial_key(RunConfig(steps=1, **kw), data=ident)
    except ValueError as e:
        return "error: " + str(e)
keys = {str(v): key(**({} if v is None else {"warmup_steps": v})) for v in (None, 0, 7)}
try:
    line = train_command(RunConfig(steps=1, warmup_steps=7))
except ValueError as e:
    line = "error: " + str(e)
json.dump({"help": help, "schema": schema, "keys": keys, "line": line}, sys.stdout)
"""


def _probe(src: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", _PROBE], cwd=src, capture_output=True, text=True,
                       env={"PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin"},
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_one_new_training_field_reaches_the_cli_the_schema_the_key_and_the_reproduce_line(
        tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "spectrumkit", src / "spectrumkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    path = src / "spectrumkit" / "config" / "parts.py"
    text = path.read_text(encoding="utf-8")
    anchor = '    batch_size: int = Field(64, description="B, the training batch")\n'
    assert text.count(anchor) == 1
    path.write_text(text.replace(anchor, anchor + '    warmup_steps: int = Field(0, description='
                                 '"a field added by the test")\n'), encoding="utf-8")
    before, after = _probe(ROOT), _probe(src)
    # (a) the help of spectrumkit train
    assert "--warmup-steps" not in before["help"]
    flag = re.search(r"--warmup-steps INTEGER\s+(.*?)\n\s*--", after["help"], re.S)
    assert flag and " ".join(flag.group(1).split()) == "a field added by the test (default: 0)"
    # (b) the configuration's schema
    props = after["schema"]["$defs"]["TrainingConfig"]["properties"]
    assert props["warmup_steps"] == {"default": 0, "description": "a field added by the test",
                                     "title": "Warmup Steps", "type": "integer"}
    assert "warmup_steps" not in before["schema"]["$defs"]["TrainingConfig"]["properties"]
    # (c) the key: the default is the same run as leaving it out; another value is not
    k = after["keys"]
    assert k["None"] == k["0"] != k["7"] and not k["7"].startswith("error")
    assert before["keys"]["7"].startswith("error") and "warmup_steps" in before["keys"]["7"]
    # (d) the reproduce line
    assert after["line"] == "spectrumkit train --steps 1 --warmup-steps 7 --out OUT"
    assert before["line"].startswith("error")
