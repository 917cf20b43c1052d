"""The README's Python quick start runs and prints what it claims."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_keeps_exactly_k_weights_in_the_torch_module(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out.split()
    # a GRU with D = 28, N = 64 has 3·N·(D + N) = 17,664 weights; 5 % of them is K = 883
    assert out[-2:] == ["883", "883"], out
