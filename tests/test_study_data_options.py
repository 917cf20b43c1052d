"""A trial's data options are checked against its task when the study is loaded."""

from __future__ import annotations

from spectrumkit.study import load_study

BAD = """
name = "bad-data"
[fixed]
task = "seq-mnist"
hidden_size = 8
epochs = 1
data = { scale = "paper" }
[[grid.kind]]
label = "digits"
[[grid.kind]]
label = "words"
task = "wikitext"
"data.bptt" = 20
[presets.quick]
seeds = 2
[report]
table = { rows = "kind", metric = "val_error_pct" }
"""


def test_spectrum_paper_shows_and_its_wikitext_trials_carry_no_mnist_options(cli):
    shown = cli("study", "show", "spectrum", "--preset", "paper")
    assert shown.returncode == 0, shown.stderr
    s = load_study("spectrum", "paper")
    words = [c for c in s.configs if c.task == "wikitext"]
    assert [c.seed for c in words] == [0, 1, 2]
    assert all(c.data == {} for c in words)
    assert all(c.data == {"scale": "paper"} for c in s.configs if c.task == "seq-mnist")


def test_a_data_option_the_task_does_not_take_is_refused_at_load(tmp_path, cli):
    p = tmp_path / "bad-data.toml"
    p.write_text(BAD)
    line = cli("study", "show", str(p)).error_line()
    assert "trial (seed 0, kind 'words', task 'wikitext', method 'jacobian')" in line
    assert "data options of task 'wikitext' among max_vocab, bptt, limit" in line
    assert line.endswith("got 'scale'")
    # a table replaces the field: the words trial without the digits' options is accepted
    p.write_text(BAD.replace('"data.bptt" = 20', "data = { bptt = 20 }"))
    s = load_study(p)
    assert [(c.task, c.data) for c in s.configs[:2]] == [
        ("seq-mnist", {"scale": "paper"}), ("wikitext", {"bptt": 20})]
