"""`spectrumkit prune`: scores -> exact-K masks -> anatomy."""

from __future__ import annotations

import os
from typing import Any

import click

from ..choices import SCOPES, SCORE_METHODS
from ..errors import SpectrumkitError, fail
from ._data import cli_batch
from ._options import given_options, score_option_flags
from ._vocabulary import (
    device_option,
    dtype_option,
    dumps,
    flags_in_message,
    json_option,
    option_flag,
    resolve_device,
)

# NOTE [prune command]
# The model is a SequenceClassifier drawn from --seed; the data from --seed + 1 (NOTE [CLI data]);
# every method's scores from a fresh generator seeded --seed + 2, so a method's mask does not
# depend on what it is compared with.
# Score options given on the command line go to every selected method that accepts them; one that
# no selected method accepts is an error. The score option flags come from the options models
# (NOTE [Option flags] in cli/_options.py); --score-batch is the scoring batch's B and synflow's
# density is 1 - --sparsity, so those two fields are not flags here.
#
# NOTE [JSON output]
# `--json` prints one JSON document on stdout and nothing else there (the command's table is left
# out; warnings and errors go to stderr as always). Numbers are the library's own, unrounded; a
# value that is not finite (the I/R ratio of a mask that keeps no recurrent weight) is null.


#: The mask file prune writes into a folder given as ``--out DIR/``.
MASKS_FILE = "masks.pt"


def _out_file(fn: str, out: str | None) -> str | None:
    """``--out``, checked up front (NOTE [Output paths]); ending in a slash it is a folder, and
    the file is ``MASKS_FILE`` inside it."""
    from .._io import check_output_file

    if out is None:
        return None
    if out.endswith(("/", os.sep)):
        out = os.path.join(out, MASKS_FILE)
    check_output_file(f"{fn} --out", out)
    return out


def list_recipes(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--list-recipes``: print the recipe table (spectrumkit.scores.RECIPES) and exit."""
    if not value or ctx.resilient_parsing:
        return
    from ..scores import DEFAULT_RECIPE, RECIPES, recipe_table

    click.echo("Recipes of the jacobian score (--recipe NAME; explicit options override them; "
               f"default: {DEFAULT_RECIPE}).")
    for r in RECIPES.values():
        click.echo(f"  {r.name:<10} {r.summary}")
    click.echo("(trial) rows are study-trial fields, not score options (docs/recipes.md).\n")
    click.echo(recipe_table())
    ctx.exit()


@click.command("prune")
@click.option("--cell", default="gru", show_default=True, help="built-in cell")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden-size", "hidden", type=int, default=400, show_default=True, help="N")
@click.option("--classes", type=int, default=10, show_default=True, help="C of the head")
@click.option("--seq-len", type=int, default=28, show_default=True,
              help="T of the scoring batch")
@click.option("--score-batch", type=int, default=64, show_default=True,
              help="B of the scoring batch")
@click.option("--init", default="glorot", show_default=True, help="initialization scheme")
@click.option("--method", type=click.Choice(SCORE_METHODS), default="jacobian",
              show_default=True, help="the score")
@click.option("--compare", default=None, help="comma-separated methods, shown side by side")
@click.option("--sparsity", type=float, default=0.95, show_default=True, help="in [0, 1)")
@click.option("--scope", type=click.Choice(SCOPES), default="global", show_default=True,
              help="one global top-K, or top-K within every tensor")
@click.option("--include-bias", is_flag=True, help="prune the cell's biases too")
@click.option("--data", default="gaussian", show_default=True,
              help="the scoring batch: gaussian or seq-mnist (the bundled digits)")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="seq-mnist: folder with the full data set (default: the bundled data)")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option()
@dtype_option()
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help=f"mask file (.pt); ending in '/': a folder, to hold {MASKS_FILE}")
@json_option("the masks' anatomy and summaries per method")
@score_option_flags(exclude=("batch_size", "density"))
@click.option("--list-recipes", is_flag=True, expose_value=False, is_eager=True,
              callback=list_recipes, help="print the recipes of the jacobian score and exit")
def prune_cmd(cell, input_size, hidden, classes, seq_len, score_batch, init, method, compare,
              sparsity, scope, include_bias, data, data_root, seed, device, dtype, out, as_json,
              **flags) -> None:
    """Score a freshly initialized model, keep the top weights, print where they sit."""
    import torch

    from ..errors import check_memory_terms, check_positive_int, check_seed, check_unit_interval
    from ..masks import density_from_sparsity
    from ..scores import OPTIONS

    fn = "prune"
    check_seed(fn, "--seed", seed)
    out = _out_file(fn, out)
    methods = _methods(fn, method, compare)
    dev = resolve_device(fn, device)
    for name, v in (("--seq-len", seq_len), ("--score-batch", score_batch),
                    ("--hidden-size", hidden), ("--input-size", input_size),
                    ("--classes", classes)):
        check_positive_int(fn, name, v)
    density = density_from_sparsity(check_unit_interval(fn, "--sparsity", sparsity,
                                                        low_open=False, high_open=True))
    given = given_options(flags)

    def accepts(m: str, k: str) -> bool:  # γ options only reach methods that normalize by γ
        return k in OPTIONS[m] and (not k.startswith("gamma_") or given.get(
            "normalize", OPTIONS[m].get("normalize")) == "gamma")

    unused = [k for k in given if not any(accepts(m, k) for m in methods)]
    if unused:
        raise fail(fn, f"score options that apply to {', '.join(methods)}",
                   ", ".join(option_flag(k) for k in unused))
    for m in methods:  # the horizon is a flag here: name it, and its default
        h = given.get("horizon", OPTIONS[m]["horizon"]) if "horizon" in OPTIONS[m] else None
        if isinstance(h, int) and h > seq_len:
            raise fail(fn, f"--horizon U in 1..T={seq_len} (T = --seq-len; the default "
                       f"--horizon is {OPTIONS[m]['horizon']})", f"{h} for --method {m}")
    dt = getattr(torch, dtype)
    check_memory_terms(fn, _memory_terms(cell, input_size, hidden, classes, seq_len, score_batch,
                                         {m: {k: v for k, v in given.items() if accepts(m, k)}
                                          for m in methods}), dev, itemsize=dt.itemsize)
    opts = {m: {k: v for k, v in given.items() if accepts(m, k)} for m in methods}
    model, masks, tables, summaries = _score_and_mask(
        fn, methods, opts, cell=cell, input_size=input_size, hidden=hidden, classes=classes,
        seq_len=seq_len, score_batch=score_batch, init=init, density=density, scope=scope,
        include_bias=include_bias, data=data, data_root=data_root, seed=seed, device=dev,
        dtype=dt)
    config = {"cell": model.cell.name, "input_size": input_size, "hidden_size": hidden,
              "classes": classes, "seq_len": seq_len, "score_batch": score_batch, "init": init,
              "sparsity": sparsity, "density": density, "scope": scope,
              "include_bias": include_bias, "data": data, "seed": seed, "dtype": dtype,
              "options": given}
    path = None
    if out is not None:
        from ..masks import save_masks

        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)  # --out DIR/: DIR may be new
        path = save_masks(out, masks, config)
    if as_json:  # NOTE [JSON output]
        click.echo(dumps({"config": config, "device": str(dev), "out": None if path is None
                          else str(path), "methods": {
                              m: {"kept": int(tables[m]["kept"].sum()),
                                  "total": int(tables[m]["total"].sum()),
                                  "anatomy": tables[m].to_dict(orient="records"),
                                  "summary": {k: float(v) for k, v in summaries[m].items()}}
                              for m in methods}}))
        return
    _print_tables(model.cell.name, config, methods, tables, summaries)
    if path is not None:
        click.echo(f"wrote {path}")


def _methods(fn: str, method: str, compare: str | None) -> list[str]:
    """The methods to score: ``--compare``'s list, else ``--method``."""
    from ..errors import fail

    if not compare:
        return [method]
    methods = [m.strip() for m in compare.split(",")]
    for m in methods:
        if m not in SCORE_METHODS:
            raise fail(fn, f"--compare methods among {', '.join(SCORE_METHODS)}", repr(m))
    if len(set(methods)) != len(methods):
        raise fail(fn, "distinct methods in --compare", compare)
    return methods


def _score_and_mask(fn: str, methods: list[str], opts: dict[str, dict[str, Any]], *,
                    cell: str, input_size: int, hidden: int, classes: int, seq_len: int,
                    score_batch: int, init: str, density: float, scope: str,
                    include_bias: bool, data: str, data_root: str | None, seed: int,
                    device: Any, dtype: Any) -> tuple[Any, dict, dict, dict]:
    """NOTE [prune command]: the model, and per method its mask, anatomy table and summary."""
    import torch

    from ..anatomy import anatomy_summary, mask_anatomy
    from ..masks import topk_mask
    from ..models import SequenceClassifier
    from ..scores import compute_scores

    model = SequenceClassifier(cell, input_size, hidden, classes, init=init, seed=seed,
                               dtype=dtype, device=device)
    xs, ys = cli_batch(fn, data, data_root, score_batch, seq_len, input_size, classes, seed,
                        dtype=dtype)
    xs, ys = xs.to(device), ys.to(device)
    masks, tables, summaries = {}, {}, {}
    for m in methods:
        o = dict(opts[m])
        if m == "synflow":
            o["density"] = density
        try:
            scores = compute_scores(m, model, (xs, ys), generator=torch.Generator().manual_seed(
                seed + 2), include_bias=include_bias, **o)
        except SpectrumkitError as e:  # speak in flags: '--hutchinson-probes', not 'probes'
            raise SpectrumkitError(flags_in_message(str(e), list(opts[m]))) from None
        masks[m] = topk_mask(scores, density, scope=scope)
        tables[m] = mask_anatomy(model.cell, masks[m], input_size, hidden)
        summaries[m] = anatomy_summary(model.cell, masks[m], input_size, hidden)
    return model, masks, tables, summaries


def _print_tables(cell: str, config: dict[str, Any], methods: list[str], tables: dict,
                  summaries: dict) -> None:
    """The anatomy table, one column per method, and its summary rows."""
    from tabulate import tabulate

    first = tables[methods[0]]
    kept, total = int(first["kept"].sum()), int(first["total"].sum())
    c = config
    click.echo(f"{cell} D={c['input_size']} N={c['hidden_size']}, init {c['init']}, data "
               f"{c['data']} (B={c['score_batch']}, T={c['seq_len']}), seed {c['seed']}, "
               f"sparsity {c['sparsity']}: keep {kept:,} of {total:,} "
               f"{'entries' if c['include_bias'] else 'weights'} ({c['scope']})")
    rows = [[r.gate, r.block, r.total] + [f"{tables[m].loc[i, 'kept']:,} "
                                            f"({tables[m].loc[i, 'fraction']:.3f})"
                                            for m in methods]
            for i, r in first.iterrows()]
    names = {"ir_ratio": "I/R ratio", "dense_ir_ratio": "dense I/R ratio",
             "gate_imbalance": "gate imbalance", "dead_units": "dead units",
             "in_degree_mean": "in-degree mean", "in_degree_min": "in-degree min",
             "in_degree_max": "in-degree max"}
    for key, label in names.items():
        rows.append([label, "", ""] + [f"{summaries[m][key]:.4g}" for m in methods])
    click.echo(tabulate(rows, headers=["gate", "block", "total"] + [f"{m} kept (fraction)"
                                                                     for m in methods]))


def _memory_terms(cell: str, input_size: int, hidden: int, classes: int, seq_len: int,
                  score_batch: int, opts: dict[str, dict]) -> dict[str, int]:
    """The entries prune needs at least, by the flags that set them (NOTE [Memory terms]).

    ``opts``: each method's score options as given; γ's own batch (T̃, B̃) counts for the methods
    that normalize by γ: the flag, else the method's default, else T or B.
    """
    from ..cells import count_params
    from ..cells import get as get_cell
    from ..scores import OPTIONS

    S = get_cell(cell).state_size(hidden)
    model = count_params(cell, input_size, hidden, include_bias=True) + (hidden + 1) * classes
    terms = {f"--hidden {hidden}: a model, its scores and its mask": 3 * model,
             f"--seq-len {seq_len} and --score-batch {score_batch}: the (T, B, D) scoring batch "
             "and its (T, B, S) states": seq_len * score_batch * (input_size + S)}
    for m, given in opts.items():
        if given.get("normalize", OPTIONS[m].get("normalize")) != "gamma":
            continue
        t = given.get("gamma_steps", OPTIONS[m].get("gamma_steps")) or seq_len
        b = given.get("gamma_sequences", OPTIONS[m].get("gamma_sequences")) or score_batch
        terms[f"--gamma-steps {t} and --gamma-sequences {b}: the (T̃, B̃, D) γ batch and its "
              "states"] = t * b * (input_size + S)
    return terms
