"""A tiny results folder in the RESULTS_SCHEMA.md format, from real computations.

Masks are exact-K top-|score| masks of a real seeded GRU classifier (scores: |θ| or seeded uniform),
their anatomy is counted with ``entry_labels``, the singular values come from
``torch.linalg.svdvals`` of ``reference_jacobian``, the Lyapunov exponents from a QR iteration along
the same Jacobians, and the histories from real masked Adam steps. Every number the tests compare a
drawing against is computed here, independently of ``spectrumkit.figures``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import torch

from spectrumkit import SequenceClassifier, entry_labels, reference_jacobian

D, N, C, T, B = 3, 4, 2, 5, 6
SPARSITY = 0.5
EDGES = np.linspace(0.0, 3.0, 31)
SEEDS = (0, 1, 2)
METHODS = ("magnitude", "random")


def _masks(model, method: str, seed: int) -> dict[str, torch.Tensor]:
    params = model.prunable()
    g = torch.Generator().manual_seed(1000 + seed)
    scores = {k: (p.detach().abs() if method == "magnitude"
                  else torch.rand(p.shape, generator=g, dtype=p.dtype)) for k, p in params.items()}
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    k = round((1 - SPARSITY) * flat.numel())
    order = torch.argsort(-flat, stable=True)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[order[:k]] = True
    out, i = {}, 0
    for name, s in scores.items():
        out[name] = keep[i:i + s.numel()].view_as(s)
        i += s.numel()
    return out


def _anatomy(masks: dict[str, torch.Tensor]) -> dict:
    labels = entry_labels("gru", D, N)
    gates = ("r", "z", "n")
    rows, kept_b, tot_b = [], {}, {}
    for name, m in masks.items():
        gidx, block = labels[name]
        for gi, gname in enumerate(gates):
            sel = gidx == gi
            kept, total = int(m[sel].sum()), int(sel.sum())
            rows.append({"gate": gname, "block": block, "kept": kept, "total": total,
                         "fraction": kept / total})
            kept_b[block] = kept_b.get(block, 0) + kept
            tot_b[block] = tot_b.get(block, 0) + total
    summary = {"ir_ratio": kept_b["input"] / kept_b["recurrent"],
               "dense_ir_ratio": tot_b["input"] / tot_b["recurrent"], "gate_imbalance": 1.0,
               "dead_units": 0, "in_degree_mean": 0.0, "in_degree_min": 0, "in_degree_max": 0}
    return {"rows": rows, "summary": summary}


def connection_map_of(masks: dict[str, torch.Tensor]) -> np.ndarray:
    """(D + N, 3N) bool: rows [input; hidden], columns gates × units (the schema's layout)."""
    return torch.cat([masks["weight_ih"].T, masks["weight_hh"].T], dim=0).numpy()


def _spectra(model, xs: torch.Tensor) -> tuple[dict, dict, list]:
    params = {k: v.detach() for k, v in model.cell_params().items()}
    J = reference_jacobian(model.cell, params, xs.transpose(0, 1), steps=list(range(1, T + 1)))
    sv = torch.linalg.svdvals(J)  # (T, B, S)
    assert float(sv.max()) < EDGES[-1]
    counts, _ = np.histogram(sv.numpy().ravel(), bins=EDGES)
    hist = {"edges": EDGES.tolist(), "counts": counts.tolist(), "mean": float(sv.mean()),
            "n": int(sv.numel())}
    steps = {"step": list(range(1, T + 1)), "mean_sigma": sv.mean(dim=(1, 2)).tolist()}
    q = torch.eye(N, dtype=J.dtype)
    logs = torch.zeros(N, dtype=J.dtype)
    for t in range(T):  # example 0: λ_k = (1/T) Σ_t log |R_kk| of J_t Q_{t-1} = Q_t R_t
        q, r = torch.linalg.qr(J[t, 0] @ q)
        logs += torch.log(torch.diagonal(r).abs())
    lyap = sorted((logs / T).tolist(), reverse=True)
    return hist, steps, lyap


def _apply(model, masks):
    with torch.no_grad():
        for k, p in model.prunable().items():
            p.mul_(masks[k].to(p.dtype))


def make_trial(method: str, seed: int, status: str = "ok") -> dict:
    model = SequenceClassifier("gru", D, N, C, seed=seed, dtype=torch.float64)
    masks = _masks(model, method, seed)
    _apply(model, masks)
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    ys = (xs.sum(dim=(1, 2)) > 0).long()
    h_init, s_init, l_init = _spectra(model, xs)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    hist = {"step": [], "train_loss": [], "val_error_pct": [], "seconds": []}
    n_steps = 6 if status == "ok" else 3
    for step in range(1, n_steps + 1):
        opt.zero_grad()
        loss = model.loss((xs, ys))
        loss.backward()
        opt.step()
        _apply(model, masks)
        with torch.no_grad():
            err = float((model(xs).argmax(-1) != ys).double().mean() * 100)
        hist["step"].append(step)
        hist["train_loss"].append(float(loss.detach()))
        hist["val_error_pct"].append(err if step % 2 == 0 else None)
        hist["seconds"].append(0.01 * step)
    h_tr, s_tr, l_tr = _spectra(model, xs)
    cfg = {"seed": seed, "cell": "gru", "hidden_size": N, "init": "glorot", "method": method,
           "sparsity": SPARSITY, "normalize": False, "horizon": 4, "lr": 0.05, "epochs": 1,
           "record": ["anatomy", "connection_map", "sv_hist", "spectrum_steps", "lyapunov"]}
    cmap = connection_map_of(masks)
    key = f"{method}-{seed}-{status}".ljust(64, "0")
    ok = status == "ok"
    return {
        "schema_version": 1, "key": key, "study": "fixture", "config": cfg, "status": status,
        "error": None if ok else "loss became NaN",
        "metrics": {"val_error_pct": hist["val_error_pct"][-1] if ok else None,
                    "val_loss": hist["train_loss"][-1], "score_seconds": 0.1 + 0.01 * seed,
                    "train_seconds": 1.0, "diverged_at_step": None if ok else 3,
                    "density": 1 - SPARSITY, "kept": int(sum(int(m.sum()) for m in masks.values())),
                    "val_ppl": None, "test_ppl": None},
        "history": hist,
        "artifacts": {
            "anatomy": _anatomy(masks),
            "connection_map": {"shape": list(cmap.shape),
                               "packbits": base64.b64encode(np.packbits(cmap.ravel())).decode(),
                               "row_blocks": [["input", D], ["hidden", N]],
                               "gates": ["r", "z", "n"], "hidden_size": N},
            "sv_hist": {"init": h_init, "trained": h_tr},
            "spectrum_steps": {"init": s_init, "trained": s_tr},
            "lyapunov": {"init": l_init, "trained": l_tr},
        },
        "env": {"torch": torch.__version__, "device": "cpu", "python": "3", "spectrumkit": "0"},
    }


FIGURE_NAMES = ["anatomy", "sv_hist", "connection_maps", "curves", "lyapunov", "spectrum_steps"]


def build(root: Path) -> Path:
    """Write the fixture study into ``root/fixture`` and return that folder."""
    d = root / "fixture"
    (d / "trials").mkdir(parents=True)
    spec = {"name": "fixture", "preset": "tiny", "description": "figures test fixture",
            "grid": {"method": list(METHODS)}, "fixed": {"cell": "gru", "hidden_size": N},
            "seeds": len(SEEDS),
            "report": {"table": {"rows": "cell", "cols": "method", "metric": "val_error_pct",
                                 "paper_table": "Table 1"},
                       "figures": FIGURE_NAMES}}
    # 'cell' is fixed, not a grid axis: the table pivots on grid axes, so use the method alone
    spec["report"]["table"] = {"rows": "method", "cols": None, "metric": "val_error_pct",
                               "paper_table": "Table 1"}
    (d / "spec.json").write_text(json.dumps(spec))
    trials = [make_trial(m, s) for m in METHODS for s in SEEDS]
    trials.append(make_trial("random", 3, status="diverged"))
    for t in trials:
        (d / "trials" / f"{t['key']}.json").write_text(json.dumps(t))
    return d
