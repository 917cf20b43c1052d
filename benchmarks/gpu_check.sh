#!/usr/bin/env bash
# gpu_check.sh: run every GPU path of spectrumkit once, in well under 5 minutes, and print ratios.
#
# The only thing to run when a CUDA machine is lent:
#
#     pip install -e '.[dev,ray]'            # once: the package, pytest and the Ray extra
#     bash benchmarks/gpu_check.sh           # from the repository root; PYTHON=... to pick python
#
# It installs nothing and writes only under a fresh temporary folder (removed at the end).
# Without CUDA it prints ONE line saying it skipped and exits 0. (GPU_CHECK_DRY=1 runs every
# section on the CPU at 1/8 of the sizes instead: a dry run of the script itself, not a GPU check.)
#
# Sections (each runs on its own; a failure is printed as "[FAIL] <section>: <error>" and the
# others still run; the exit status is 1 if any section failed, else 0). Small sizes, float32:
#   1 unroll             GRU N=400, B=64, T=28: CUDA vs CPU time, max |difference|
#   2 jacobians          closed form vs vmap(jacrev) on CUDA (GRU and LSTM, N=128, B=16, 4 steps):
#                        max |difference|; closed form CUDA vs CPU time
#   3 spectra            dense spectrum() GRU N=400, B=64, 4 steps: CUDA vs CPU; matrix-free
#                        (lanczos) on CUDA vs dense on CUDA (top-σ error, σ̄ error, time ratio);
#                        lanczos alone on CUDA at LSTM N=2000 (S=4000), B=16, one step
#   4 scores             every method of spectrumkit.scores.METHODS on a GRU N=128 classifier,
#                        one batch of 64 seq-MNIST rows: CUDA vs CPU time, max relative difference
#   5 training           50 masked steps (95 % sparse GRU N=256, B=64, seq-MNIST) on CUDA, timed
#                        against 50 steps of a dense torch.nn.GRU (cuDNN) + Linear of the same size
#   6 study              a two-trial study (jacobian, random; GRU N=64, 20 steps) with
#                        `spectrumkit study run ... --device cuda`, and the same with --device cpu
#   7 ray                the same study with `--executor ray --gpus-per-trial 0.5 --device cuda`
set -u
PY="${PYTHON:-$(command -v python || command -v python3 || echo python)}"
if ! "$PY" -c "import torch, spectrumkit" >/dev/null 2>&1; then
    echo "gpu_check: skipped: $PY cannot import torch and spectrumkit (pip install -e '.[dev,ray]')"
    exit 0
fi
if [ "${GPU_CHECK_DRY:-0}" != "1" ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
    echo "gpu_check: skipped: no CUDA device visible to torch (torch.cuda.is_available() is False)"
    exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/gpucheck.toml" <<'TOML'
name = "gpucheck"
description = "gpu_check.sh: two small trials"
[grid]
method = ["jacobian", "random"]
[fixed]
task = "seq-mnist"
cell = "gru"
hidden_size = 64
init = "glorot"
sparsity = 0.95
score_batch = 64
batch_size = 64
steps = 20
record = ["sv_hist"]
spectrum_batch = 16
[presets.quick]
seeds = 1
[report]
table = { rows = "method", metric = "val_error_pct" }
TOML
export GPU_CHECK_WORK="$WORK"
timeout "${GPU_CHECK_TIMEOUT:-290}" "$PY" - <<'PYTHON'
import json, os, subprocess, sys, time, traceback
import torch

WORK = os.environ["GPU_CHECK_WORK"]
DRY = os.environ.get("GPU_CHECK_DRY", "0") == "1"
DEV = torch.device("cpu" if DRY else "cuda")
failed = []


def n(size):
    """A size, divided by 8 in a dry run."""
    return max(8, size // 8) if DRY else size


def sync():
    if DEV.type == "cuda":
        torch.cuda.synchronize()


if DRY:
    print("gpu_check: DRY RUN on the CPU at 1/8 of the sizes (GPU_CHECK_DRY=1): no GPU is checked")
else:
    print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, device "
          f"{torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()}", flush=True)


def timed(fn, dev, repeats=3):
    """Best of `repeats` wall times of fn() (after one warm-up), synchronizing on CUDA."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def section(name):
    def wrap(fn):
        t0 = time.perf_counter()
        try:
            msg = fn()
            print(f"[ok]   {name} ({time.perf_counter() - t0:.1f} s): {msg}", flush=True)
        except Exception as e:  # report and carry on with the next section
            failed.append(name)
            print(f"[FAIL] {name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                  flush=True)
            traceback.print_exc(limit=3, file=sys.stdout)
        return fn
    return wrap


from spectrumkit.init import init_params
from spectrumkit import unroll
from spectrumkit.jacobians import step_jacobians
from spectrumkit.spectra import spectrum

CPU = torch.device("cpu")


def gaussian(T, B, D, dev):
    return torch.randn(T, B, D, generator=torch.Generator().manual_seed(1)).to(dev)


@section("1 unroll")
def _():
    p = {k: v.to(DEV) for k, v in init_params("gru", 28, n(400), "glorot", seed=0).items()}
    pc = {k: v.cpu() for k, v in p.items()}
    xs = gaussian(28, 64, 28, CPU)
    tg, sg = timed(lambda: unroll("gru", p, xs.to(DEV)), DEV)
    tc, sc = timed(lambda: unroll("gru", pc, xs), CPU)
    return (f"GRU N={n(400)} B=64 T=28: CPU/GPU time ratio {tc / tg:.2f} "
            f"(cpu {tc * 1e3:.1f} ms, gpu {tg * 1e3:.1f} ms), max |diff| "
            f"{(sg.cpu() - sc).abs().max().item():.2e}")


@section("2 jacobians")
def _():
    msgs = []
    for cell in ("gru", "lstm"):
        p = {k: v.to(DEV) for k, v in init_params(cell, 28, n(128), "glorot", seed=0).items()}
        xs = gaussian(6, 16, 28, DEV)
        tcf, Jcf = timed(lambda: step_jacobians(cell, p, xs, steps=4, method="closed_form"), DEV)
        trev, Jrev = timed(lambda: step_jacobians(cell, p, xs, steps=4, method="jacrev"), DEV)
        pc = {k: v.cpu() for k, v in p.items()}
        tcpu, Jcpu = timed(lambda: step_jacobians(cell, pc, xs.cpu(), steps=4,
                                                  method="closed_form"), CPU)
        msgs.append(f"{cell} N={n(128)}: |closed-jacrev| {(Jcf - Jrev).abs().max().item():.2e}, "
                    f"jacrev/closed time {trev / tcf:.2f}, closed CPU/GPU {tcpu / tcf:.2f}, "
                    f"|GPU-CPU| {(Jcf.cpu() - Jcpu).abs().max().item():.2e}")
    return "; ".join(msgs)


@section("3 spectra")
def _():
    p = {k: v.to(DEV) for k, v in init_params("gru", 28, n(400), "glorot", seed=0).items()}
    xs = gaussian(28, 64, 28, DEV)
    tg, dg = timed(lambda: spectrum("gru", p, xs, steps=4), DEV, repeats=1)
    pc = {k: v.cpu() for k, v in p.items()}
    tc, dc = timed(lambda: spectrum("gru", pc, xs.cpu(), steps=4), CPU, repeats=1)
    tl, lg = timed(lambda: spectrum("gru", p, xs, steps=4, method="lanczos", seed=0,
                                    bins=dg.histogram.edges), DEV, repeats=1)
    top = (lg.singular_values[..., 0] / dg.singular_values[..., 0] - 1).abs().max().item()
    p2 = {k: v.to(DEV) for k, v in init_params("lstm", 28, n(2000), "glorot", seed=0).items()}
    x2 = gaussian(2, 16, 28, DEV)
    if DEV.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t2, l2 = timed(lambda: spectrum("lstm", p2, x2, steps=1, method="lanczos", seed=0), DEV,
                   repeats=1)
    mem = torch.cuda.max_memory_allocated() / 1e6 if DEV.type == "cuda" else float("nan")
    ev = l2.matrix_free.extremes
    return (f"dense GRU N={n(400)} B=64 U=4: CPU/GPU time {tc / tg:.2f} (gpu {tg:.2f} s), "
            f"|mean σ GPU-CPU| {abs(dg.pooled['mean'] - dc.pooled['mean']):.2e}; lanczos on GPU: "
            f"dense/lanczos time {tg / tl:.2f}, top σ max rel err {top:.2e}, σ̄ rel err "
            f"{abs(lg.pooled['mean'] / dg.pooled['mean'] - 1):.2e}; lanczos LSTM N={n(2000)} "
            f"B=16: {t2:.2f} s, peak {mem:.0f} MB allocated, top-5 converged "
            f"{int(ev.top_converged.sum())}/{ev.top_converged.numel()}")


@section("4 scores")
def _():
    from spectrumkit.data import load_task, sample_batch
    from spectrumkit.evaluation import make_model
    from spectrumkit.scores import METHODS, compute_scores
    task = load_task("seq-mnist")
    out = []
    for method in METHODS:
        res = []
        for dev in (CPU, DEV):
            model = make_model(task, "gru", n(128), seed=0, device=dev)
            batch = sample_batch(task.train, 64, generator=torch.Generator().manual_seed(0),
                                 bptt=task.bptt, device=dev)
            opts = {"density": 0.05} if method == "synflow" else {}
            res.append(timed(lambda: compute_scores(
                method, model, batch, generator=torch.Generator().manual_seed(0), **opts),
                dev, repeats=1))
        (tc, sc), (tg, sg) = res
        rel = max(((sg[k].cpu() - sc[k]).abs().max() / sc[k].abs().max().clamp_min(1e-30)).item()
                  for k in sc)
        out.append(f"{method} (GRU N={n(128)}) CPU/GPU {tc / tg:.2f} (max rel diff {rel:.1e})")
    return "; ".join(out)


@section("5 training")
def _():
    from spectrumkit.data import load_task
    from spectrumkit.evaluation import make_model
    from spectrumkit.masks import topk_mask
    from spectrumkit.training import train
    task = load_task("seq-mnist")
    N, steps, B = n(256), 50, 64
    model = make_model(task, "gru", N, seed=0, device=DEV)
    g = torch.Generator().manual_seed(0)
    scores = {k: torch.rand(v.shape, generator=g).to(DEV) for k, v in model.prunable().items()}
    mask = topk_mask(scores, 0.05)
    train(model, task, mask=mask, steps=5, batch_size=B, device=DEV, seed=0, progress=False)
    sync()
    t0 = time.perf_counter()
    res = train(model, task, mask=mask, steps=steps, batch_size=B, device=DEV, seed=0,
                progress=False)
    sync()
    ours = time.perf_counter() - t0
    # The same work with torch.nn.GRU (cuDNN) + a linear head, dense, on the same batches' shape.
    rnn = torch.nn.GRU(28, N, batch_first=True).to(DEV)
    head = torch.nn.Linear(N, 10).to(DEV)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)
    xs = torch.randn(B, 28, 28, generator=g).to(DEV)
    ys = torch.randint(0, 10, (B,), generator=g).to(DEV)

    def one():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(rnn(xs)[0][:, -1]), ys)
        loss.backward()
        opt.step()
    for _ in range(5):
        one()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    sync()
    cudnn = time.perf_counter() - t0
    return (f"{steps} masked steps GRU N={N} B={B}: spectrumkit {ours:.2f} s "
            f"(status {res.status}, incl. its end-of-run evaluation) vs dense cuDNN GRU "
            f"{cudnn:.2f} s: spectrumkit/cuDNN time ratio {ours / cudnn:.1f}")


def study(out, *extra, limit=150):
    cmd = [sys.executable, "-m", "spectrumkit.cli", "study", "run",
           os.path.join(WORK, "gpucheck.toml"), "--out", out, "--no-figures", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
    trials = os.path.join(out, "gpucheck", "trials")
    results = [json.load(open(os.path.join(trials, f))) for f in sorted(os.listdir(trials))]
    devices = sorted({str((x.get("env") or {}).get("device", x.get("device"))) for x in results})
    status = sorted({x.get("status") for x in results})
    return time.perf_counter() - t0, len(results), devices, status


@section("6 study")
def _():
    tg, k, devs, st = study(os.path.join(WORK, "cuda"), "--device", DEV.type)
    tc, nc, devc, stc = study(os.path.join(WORK, "cpu"), "--device", "cpu")
    return (f"--device {DEV.type}: {k} trials {st} on {devs} in {tg:.1f} s; --device cpu: {nc} trials "
            f"{stc} on {devc} in {tc:.1f} s; CPU/GPU wall ratio {tc / tg:.2f}")


@section("7 ray")
def _():
    try:
        import ray  # noqa: F401
    except ImportError:
        raise RuntimeError("ray is not installed: pip install -e '.[ray]'") from None
    gpus = [] if DRY else ["--gpus-per-trial", "0.5"]
    t, k, devs, st = study(os.path.join(WORK, "ray"), "--device", DEV.type, "--executor", "ray",
                           *gpus, limit=200)
    return f"--executor ray {' '.join(gpus)}: {k} trials {st} on {devs} in {t:.1f} s"


print(f"gpu_check: {'FAILED: ' + ', '.join(failed) if failed else 'all sections ok'}")
sys.exit(1 if failed else 0)
PYTHON
rc=$?
[ "$rc" -eq 124 ] && echo "gpu_check: FAILED: the 290 s limit was reached"
exit "$rc"
