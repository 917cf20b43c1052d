#!/usr/bin/env bash
# gpu_paper_slice.sh: one row of the paper's Table 5 at the paper's width, in at most 8 minutes of
# one large GPU: the glorot row (Jacobian score and random pruning, 95 % sparse GRU, 400 units) on
# the full MNIST in the authors' split (63,000 training, 7,000 validation digits), 3 seeds, with as
# many epochs as the measured step time allows.
#
#     bash benchmarks/gpu_paper_slice.sh      # from the repository root; PYTHON=... to pick python
#
# How: the six trials (2 methods x 3 seeds) run at once on the one device, each in its own process
# (`spectrumkit study run --executor process --workers 6 --device cuda`). A calibration run of the
# same six trials for GPU_SLICE_CAL_STEPS steps (60) measures the time per step under that
# concurrency (the slowest trial's train_seconds / steps) and the fixed cost of a run (start-up,
# data, scoring, evaluation); the real run then trains for the most whole epochs that fit in what
# is left of GPU_SLICE_BUDGET_S (480 s), with 10 % held back, or for as many steps if not even one
# epoch fits. It prints the calibration, the study's table (validation error %, mean +- std over
# the seeds), each trial's epochs, steps and time per step.
#
# Environment:
#   GPU_SLICE_DATA       the full MNIST folder (default: shared/data/mnist beside the repository,
#                        in it, or in a folder above it)
#   GPU_SLICE_OUT        keep the results there (default: a temporary folder, removed at the end)
#   GPU_SLICE_BUDGET_S   the whole script's time budget in seconds (480)
#   GPU_SLICE_WORKERS    trials at once (6)
#   GPU_SLICE_DEVICE     the device of the real run (cuda); GPU_SLICE_HIDDEN its width (400):
#                        GPU_SLICE_DEVICE=cpu GPU_SLICE_HIDDEN=16 rehearses the calibration
#   GPU_SLICE_DRY=1      a dry run of the script on the CPU: 16 units, 20 steps, 2 workers, no
#                        calibration; the bundled data if the full MNIST is not found
# Without CUDA (and without GPU_SLICE_DRY=1) it prints ONE line and exits 0.
set -u
PY="${PYTHON:-$(command -v python || command -v python3 || echo python)}"
if ! "$PY" -c "import torch, spectrumkit" >/dev/null 2>&1; then
    echo "gpu_paper_slice: skipped: $PY cannot import torch and spectrumkit (pip install -e .)"
    exit 0
fi
if [ "${GPU_SLICE_DRY:-0}" != "1" ] && [ "${GPU_SLICE_DEVICE:-cuda}" = "cuda" ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
    echo "gpu_paper_slice: skipped: no CUDA device visible to torch (torch.cuda.is_available() is False)"
    exit 0
fi
if [ -n "${GPU_SLICE_OUT:-}" ]; then
    WORK="$GPU_SLICE_OUT"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
fi
export GPU_SLICE_WORK="$WORK" GPU_SLICE_REPO="$(pwd)" GPU_SLICE_PY="$PY"
"$PY" - <<'PYTHON'
import json, math, os, subprocess, sys, time
from pathlib import Path

T0 = time.perf_counter()
WORK, REPO, PY = Path(os.environ["GPU_SLICE_WORK"]), Path(os.environ["GPU_SLICE_REPO"]), \
    os.environ["GPU_SLICE_PY"]
DRY = os.environ.get("GPU_SLICE_DRY", "0") == "1"
BUDGET = float(os.environ.get("GPU_SLICE_BUDGET_S", "480"))
WORKERS = int(os.environ.get("GPU_SLICE_WORKERS", "2" if DRY else "6"))
CAL_STEPS = int(os.environ.get("GPU_SLICE_CAL_STEPS", "60"))
HIDDEN, SEEDS, DEVICE = (16, 3, "cpu") if DRY else (
    int(os.environ.get("GPU_SLICE_HIDDEN", "400")), 3, os.environ.get("GPU_SLICE_DEVICE", "cuda"))
NAME = "gpu-paper-slice"


def full_mnist():
    given = os.environ.get("GPU_SLICE_DATA")
    cands = [Path(given)] if given else []
    cands += [REPO / "shared" / "data" / "mnist"] + [d / "shared" / "data" / "mnist"
                                                    for d in REPO.resolve().parents]
    for c in cands:
        if all((c / f"{p}-images-idx3-ubyte.gz").is_file() for p in ("train", "t10k")):
            return c
    return None


ROOT = full_mnist()
if ROOT is None and not DRY:
    print("gpu_paper_slice: FAILED: no full MNIST found (set GPU_SLICE_DATA to the folder holding "
          "train-*/t10k-* IDX files)")
    sys.exit(1)
if DRY:
    print(f"gpu_paper_slice: DRY RUN on the CPU (GPU_SLICE_DRY=1): {HIDDEN} units, 20 steps, "
          f"{WORKERS} workers, data {ROOT or 'bundled (no full MNIST found)'}; no GPU is measured")
else:
    import torch
    name = torch.cuda.get_device_name(0) if DEVICE.startswith("cuda") else DEVICE
    print(f"gpu_paper_slice: torch {torch.__version__}, CUDA {torch.version.cuda}, device "
          f"{name}; {HIDDEN} units; data {ROOT}; budget {BUDGET:.0f} s", flush=True)


def toml(length: str) -> str:
    split = ', split_rule = "authors"' if ROOT is not None else ""
    threads = 1 if DRY else max(1, (os.cpu_count() or WORKERS) // WORKERS)
    return f"""name = "{NAME}"
description = "gpu_paper_slice.sh: the glorot row of Table 5 (Jacobian score and random)"
paper = "Table 5"
[grid]
method = ["jacobian", "random"]
[fixed]
task = "seq-mnist"
cell = "gru"
init = "glorot"
hidden_size = {HIDDEN}
sparsity = 0.95
score_batch = 64
batch_size = 64
lr = 0.001
optimizer = "adam"
{length}
data = {{ scale = "paper"{split} }}
[presets.quick]
seeds = {SEEDS}
threads = {threads}
[report]
table = {{ rows = "init", cols = "method", metric = "val_error_pct", paper_table = "Table 5" }}
"""


def study(tag: str, length: str, show: bool):
    """Run the six trials with ``length`` into WORK/tag; (wall seconds, trial results)."""
    spec = WORK / f"{tag}.toml"
    spec.write_text(toml(length))
    cmd = [PY, "-m", "spectrumkit.cli", "study", "run", str(spec), "--out", str(WORK / tag),
           "--no-figures", "--executor", "process", "--workers", str(WORKERS),
           "--device", DEVICE]
    if ROOT is not None:
        cmd += ["--data-root", str(ROOT)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        print(f"gpu_paper_slice: FAILED: {tag} run exited {r.returncode}: "
              f"{(r.stderr or r.stdout).strip()[-400:]}")
        sys.exit(1)
    if show:
        print(r.stdout.rstrip(), flush=True)
    trials = WORK / tag / NAME / "trials"
    results = [json.loads(p.read_text()) for p in sorted(trials.glob("*.json"))]
    bad = [x["key"][:12] for x in results if x.get("status") != "ok"]
    if bad:
        print(f"gpu_paper_slice: warning: trials not ok: {', '.join(bad)}")
    return wall, results


def per_step(x) -> float:
    m = x["metrics"]
    return m["train_seconds"] / m["steps"]


if DRY:
    length = "steps = 20"
else:
    wall, cal = study("calibration", f"steps = {CAL_STEPS}", show=False)
    t_step = max(per_step(x) for x in cal)
    fixed = wall - max(x["metrics"]["train_seconds"] for x in cal)
    steps_per_epoch = round(cal[0]["metrics"]["steps"] / cal[0]["metrics"]["epochs"])
    left = (BUDGET - (time.perf_counter() - T0) - fixed) * 0.9
    epoch_cost = steps_per_epoch * t_step * 1.05  # + one validation pass per epoch (about 4 %)
    epochs = int(left // epoch_cost)
    print(f"gpu_paper_slice: calibration: {CAL_STEPS} steps of {len(cal)} concurrent trials in "
          f"{wall:.1f} s: {t_step * 1e3:.1f} ms per step (slowest trial), fixed cost "
          f"{fixed:.1f} s; an epoch is {steps_per_epoch} steps, about {epoch_cost:.0f} s; "
          f"{left:.0f} s left for training", flush=True)
    if epochs >= 1:
        length = f"epochs = {epochs}"
    else:
        length = f"steps = {max(1, int(left // t_step))}"
    print(f"gpu_paper_slice: training each trial for {length.replace(' = ', ' ')}", flush=True)
wall, res = study("slice", length, show=True)
print("gpu_paper_slice: per trial: method seed epochs steps ms/step val_error_pct")
for x in sorted(res, key=lambda x: (x["config"]["score"]["method"], x["config"]["seed"])):
    m = x["metrics"]
    print(f"gpu_paper_slice:   {x['config']['score']['method']:<9} {x['config']['seed']} "
          f"{m['epochs']:.4f} {m['steps']} {per_step(x) * 1e3:.2f} {m['val_error_pct']:.2f}")
ep = [x["metrics"]["epochs"] for x in res]
print(f"gpu_paper_slice: epochs reached {min(ep):.4f}-{max(ep):.4f}; time per step "
      f"{sum(per_step(x) for x in res) / len(res) * 1e3:.2f} ms (mean over trials, "
      f"{len(res)} at once); this run {wall:.1f} s, script {time.perf_counter() - T0:.1f} s")
PYTHON
