"""`spectrumkit study export`: a study's results as one CSV or Parquet table;
`spectrumkit export`: a finished train run's network for torch.nn or safetensors."""

from __future__ import annotations

import click


@click.command("export")
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


@click.command("tensorboard")
@click.argument("study_dir", metavar="OUT/NAME")
@click.option("--out", required=True, metavar="DIR", help="a new or empty folder for the runs")
def study_tensorboard_cmd(study_dir: str, out: str) -> None:
    """Write one TensorBoard run per stored trial of OUT/NAME into DIR/<key> (tensorboard extra).

    \b
    From the stored trial files, so for every executor: each trial's history (train_loss,
    val_<metric>, density, epoch, seconds at the evaluation steps) and lr, and with the anatomy
    record the mask's I/R ratio and gate shares at step 0. Scalars are float64.
    View them with: tensorboard --logdir DIR
    """
    from ..tensorboard_log import write_study_runs

    runs = write_study_runs(study_dir, out)
    click.echo(f"wrote {len(runs)} runs into {out}")


@click.command("export")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["torch", "safetensors"]), default="torch",
              show_default=True, help="safetensors needs the safetensors extra")
@click.option("--out", required=True, metavar="FILE", help="the file to write")
def export_cmd(run_dir: str, fmt: str, out: str) -> None:
    """Export the trained sparse network of a finished `spectrumkit train` run folder.

    \b
    RUN_DIR is the run's --out folder: metrics.json with status ok and checkpoint/checkpoint.pt
    (written with --resume, the default). Study trials store no weights: rerun one with
    `spectrumkit train` to export it. Cells with a torch.nn twin only: rnn, rnn_relu (nn.RNN),
    gru (nn.GRU), lstm (nn.LSTM); one layer, time-major (batch_first=False).
    --format torch: torch.load(FILE, weights_only=True) gives a dict with
      module ("GRU"), kwargs, state_dict (torch.nn names: weight_ih_l0, ...), mask (bool, same
      names; None for a dense run), readout (the model's head), cell:
      getattr(torch.nn, d["module"])(**d["kwargs"]).load_state_dict(d["state_dict"])
    --format safetensors: the state dict's tensors, the masks as mask.<name> (bool) and the
      readout as readout.<name>; metadata module, cell, input_size, hidden_size (nonlinearity).
      Readable without torch: safetensors.numpy.load_file(FILE).
    Example: spectrumkit export runs/gru90 --format safetensors --out gru90.safetensors
    """
    from ..export import export_run

    path = export_run(run_dir, out, fmt)  # type: ignore[arg-type]
    click.echo(f"wrote: {path}")
