r"""Export a finished ``spectrumkit train`` run's trained sparse network for other frameworks.

Legend: D = input size, N = hidden size, G = gates (1 rnn, 3 gru, 4 lstm).

A run folder ``OUT`` of ``spectrumkit train`` holds ``metrics.json`` (the record, with its status)
and, with ``--resume`` (the default), ``checkpoint/checkpoint.pt``: the trained model and the mask
held at the end. :func:`export_run` reads both and writes the recurrent layer as the matching
``torch.nn`` module's parameters (``rnn``/``rnn_relu`` → ``nn.RNN``, ``gru`` → ``nn.GRU``,
``lstm`` → ``nn.LSTM``; one layer, time-major, converted by :func:`~spectrumkit.interop.to_torch`),
with the masks under the same names and the readout (the linear head, or a language model's
embedding and output layer) under the model's own names. Pruned weights are exactly zero.

Study trials store results, not weights, so only ``train`` runs can be exported; the command a
trial corresponds to is :func:`spectrumkit.cli.cmd_train.train_command`.

NOTE [Export formats]
``torch``: ``torch.save`` of a plain dict, readable with ``torch.load(path, weights_only=True)``::

    {"module": "GRU", "kwargs": {"input_size": D, "hidden_size": N, ...},
     "state_dict": {"weight_ih_l0": (G·N, D), "weight_hh_l0": (G·N, N),
                    "bias_ih_l0": (G·N,), "bias_hh_l0": (G·N,)},
     "mask": {"weight_ih_l0": bool (G·N, D), ...} or None for a dense run,
     "readout": {"head.weight": ..., "head.bias": ...}, "cell": "gru"}

    getattr(torch.nn, d["module"])(**d["kwargs"]).load_state_dict(d["state_dict"])

``safetensors``: one flat file (``safetensors.torch.load_file`` / ``safetensors.numpy.load_file``)
with the state dict's tensors under their torch.nn names, the masks as bool tensors under
``mask.<name>`` and the readout under ``readout.<name>``; the header's metadata holds ``module``,
``cell``, ``input_size``, ``hidden_size`` and, for nn.RNN, ``nonlinearity`` (strings).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from ._io import check_output_file, write_atomic
from .cells import get
from .checkpoints import CHECKPOINT_FILE, _load_checkpoint
from .errors import check_choice, fail
from .interop import to_torch

__all__ = ["EXPORT_FORMATS", "TORCH_TWINS", "export_run"]

#: Accepted ``format`` values of :func:`export_run`.
EXPORT_FORMATS = ("torch", "safetensors")
ExportFormat = Literal["torch", "safetensors"]
#: The cells with a torch.nn twin, and the twin's class name.
TORCH_TWINS = {"rnn": "RNN", "rnn_relu": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _require_safetensors(fn: str) -> None:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        raise fail(fn, "safetensors for the safetensors format "
                   "(pip install 'spectrumkit[safetensors]')", "no safetensors installed") from None


def _read_record(fn: str, run: Path) -> dict[str, Any]:
    what = "a finished spectrumkit train run folder (holding metrics.json)"
    if (run / "trials").is_dir() or run.suffix == ".json":
        raise fail(fn, what + "; study trials store no weights, so rerun the trial with "
                   "spectrumkit train", str(run))
    path = run / "metrics.json"
    if not path.is_file():
        raise fail(fn, what, f"{run} without metrics.json")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        config, status = record["config"], record["status"]
        if not isinstance(config, dict) or not isinstance(config.get("cell"), str):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise fail(fn, "a metrics.json written by spectrumkit train", str(path)) from None
    if status != "ok":
        raise fail(fn, "a run that finished with status ok", f"status {status!r} in {path}")
    return record


def _nn_name(name: str) -> str:
    return f"{name}_l0"


def _exported(fn: str, run: Path) -> dict[str, Any]:
    """The torch-format dict of NOTE [Export formats] for the run folder ``run``."""
    record = _read_record(fn, run)
    cell = get(record["config"]["cell"])
    if cell.name not in TORCH_TWINS:
        raise fail(fn, "a run of a cell with a torch.nn twin (rnn, rnn_relu, gru, lstm)",
                   f"cell {cell.name!r} in {run / 'metrics.json'}")
    path = run / "checkpoint" / CHECKPOINT_FILE
    if not path.is_file():
        raise fail(fn, "the run's trained weights in checkpoint/checkpoint.pt (spectrumkit train "
                   "with --resume, the default)", f"none in {run}")
    ck = _load_checkpoint(path)
    st = ck["state"]
    if st.get("status") != "ok" or st.get("metrics") is None:
        raise fail(fn, "a checkpoint of a finished run", f"step {st.get('step')} of an "
                   f"unfinished or diverged run in {path}")
    ident = ck["config"].get("identity") or {}
    mismatch = [k for k, v in record["config"].items() if k in ident and ident[k] != v]
    if mismatch:
        raise fail(fn, "metrics.json and the checkpoint of the same run",
                   f"different {', '.join(mismatch)} in {run}")
    model = ck["model"]
    params = {k.removeprefix("rnn."): v for k, v in model.items() if k.startswith("rnn.")}
    module = to_torch(cell, params)
    kwargs: dict[str, Any] = {"input_size": module.input_size, "hidden_size": module.hidden_size,
                              "batch_first": False}
    if cell.name in ("rnn", "rnn_relu"):
        kwargs["nonlinearity"] = "relu" if cell.name == "rnn_relu" else "tanh"
    mask: Mapping[str, torch.Tensor] | None = ck["mask"]
    return {"module": TORCH_TWINS[cell.name], "cell": cell.name, "kwargs": kwargs,
            "state_dict": {k: v.detach().cpu().contiguous()
                           for k, v in module.state_dict().items()},
            "mask": None if mask is None else
            {_nn_name(k): m.detach().cpu().to(torch.bool).contiguous() for k, m in mask.items()},
            "readout": {k: v.detach().cpu().contiguous() for k, v in model.items()
                        if not k.startswith("rnn.")}}


def _safetensors_bytes(d: dict[str, Any]) -> bytes:
    from safetensors.torch import save

    tensors = dict(d["state_dict"])
    tensors.update({f"mask.{k}": m for k, m in (d["mask"] or {}).items()})
    tensors.update({f"readout.{k}": v.clone() for k, v in d["readout"].items()})
    meta = {"module": d["module"], "cell": d["cell"],
            **{k: str(v) for k, v in d["kwargs"].items()}}
    return save(tensors, metadata=meta)


def export_run(run_dir: str | Path, out: str | Path, format: ExportFormat = "torch") -> Path:
    """Write the trained sparse network of a finished ``spectrumkit train`` run; return the path.

    Args:
        run_dir: the run's ``--out`` folder (``metrics.json`` with status ok and
            ``checkpoint/checkpoint.pt``).
        out: the file to write (atomically).
        format: ``"torch"`` or ``"safetensors"`` (the ``safetensors`` extra); the layouts are in
            NOTE [Export formats].

    Raises :class:`SpectrumkitError` (one line at the CLI) for a folder that is not a finished
    train run (no metrics.json, status not ok, no checkpoint, an unfinished checkpoint, a study
    folder or trial file), a cell without a torch.nn twin (``peephole_lstm``, ``gru_cho``, user
    cells), a missing safetensors, or an output path that cannot be written.
    """
    fn = "export_run"
    check_choice(fn, "format", format, EXPORT_FORMATS)
    if format == "safetensors":
        _require_safetensors(fn)
    path = check_output_file(fn, out)
    d = _exported(fn, Path(run_dir))
    if format == "safetensors":
        data = _safetensors_bytes(d)
    else:
        buf = io.BytesIO()
        torch.save(d, buf)
        data = buf.getvalue()
    return write_atomic(path, lambda f: f.write(data))
