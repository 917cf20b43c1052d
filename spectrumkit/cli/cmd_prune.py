"""`spectrumkit prune`: scores -> exact-K masks -> anatomy."""

from __future__ import annotations

import os

import click

from . import main
from ._data import _cli_batch
from ._options import given_options, score_option_flags

# NOTE [prune command]
# The model is a SequenceClassifier drawn from --seed; the data from --seed + 1 (NOTE [CLI data]);
# every method's scores from a fresh generator seeded --seed + 2, so a method's mask does not
# depend on what it is compared with.
# Score options given on the command line go to every selected method that accepts them; one that
# no selected method accepts is an error. The score option flags come from the options models
# (NOTE [Option flags] in cli/_options.py); --batch-size is the scoring batch's B and synflow's
# density is 1 - --sparsity, so those two fields are not flags here.


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


@main.command("prune")
@click.option("--cell", default="gru", show_default=True, help="built-in cell")
@click.option("--input-size", type=int, default=28, show_default=True, help="D")
@click.option("--hidden", type=int, default=400, show_default=True, help="N")
@click.option("--classes", type=int, default=10, show_default=True, help="C of the head")
@click.option("--steps", type=int, default=28, show_default=True, help="T of the batch")
@click.option("--batch-size", type=int, default=64, show_default=True, help="B of the batch")
@click.option("--init", default="glorot", show_default=True, help="initialization scheme")
@click.option("--method", default="jacobian", show_default=True,
              help="jacobian, snip, foresight, magnitude, random or synflow")
@click.option("--compare", default=None, help="comma-separated methods, shown side by side")
@click.option("--sparsity", type=float, default=0.95, show_default=True, help="in [0, 1)")
@click.option("--scope", default="global", show_default=True, help="global or per_tensor")
@click.option("--include-bias", is_flag=True, help="prune the cell's biases too")
@click.option("--data", default="gaussian", show_default=True,
              help="the scoring batch: gaussian or seq-mnist (the bundled digits)")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="seq-mnist: folder with the full data set (default: the bundled data)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help=f"mask file (.pt); ending in '/': a folder, to hold {MASKS_FILE}")
@score_option_flags(exclude=("batch_size", "density"))
@click.option("--list-recipes", is_flag=True, expose_value=False, is_eager=True,
              callback=list_recipes, help="print the recipes of the jacobian score and exit")
def prune_cmd(cell, input_size, hidden, classes, steps, batch_size, init, method, compare,
              sparsity, scope, include_bias, data, data_root, seed, device, out, **flags) -> None:
    """Score a freshly initialized model, keep the top weights, print where they sit."""
    import torch
    from tabulate import tabulate

    from ..anatomy import anatomy_summary, mask_anatomy
    from ..errors import (
        SpectrumkitError,
        check_memory_terms,
        check_positive_int,
        check_seed,
        fail,
    )
    from ..evaluation import resolve_device
    from ..masks import density_from_sparsity, save_masks, topk_mask
    from ..models import SequenceClassifier
    from ..scores import METHODS, OPTIONS, compute_scores

    fn = "prune"
    check_seed(fn, "--seed", seed)
    out = _out_file(fn, out)
    methods = [m.strip() for m in compare.split(",")] if compare else [method]
    for m in methods:
        if m not in METHODS:
            raise fail(fn, f"methods among {', '.join(METHODS)}", repr(m))
    if len(set(methods)) != len(methods):
        raise fail(fn, "distinct methods in --compare", compare)
    try:
        device = resolve_device(device)
    except SpectrumkitError as e:
        raise fail(fn, "--device auto, cpu or cuda (one this machine has)",
                   f"{device!r} ({e})") from None
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        check_positive_int(fn, name, v)
    density = density_from_sparsity(sparsity)
    given = given_options(flags)

    def accepts(m: str, k: str) -> bool:  # γ options only reach methods that normalize by γ
        return k in OPTIONS[m] and (not k.startswith("gamma_") or given.get(
            "normalize", OPTIONS[m].get("normalize")) == "gamma")

    unused = [k for k in given if not any(accepts(m, k) for m in methods)]
    if unused:
        raise fail(fn, f"score options that apply to {', '.join(methods)}",
                   ", ".join("--" + k.replace("_", "-") for k in unused))
    for m in methods:  # the horizon is a flag here: name it, and its default
        h = given.get("horizon", OPTIONS[m]["horizon"]) if "horizon" in OPTIONS[m] else None
        if isinstance(h, int) and h > steps:
            raise fail(fn, f"--horizon U in 1..T={steps} (T = --steps; the default --horizon is "
                       f"{OPTIONS[m]['horizon']})", f"{h} for --method {m}")
    check_positive_int(fn, "--hidden", hidden)
    check_positive_int(fn, "--input-size", input_size)
    check_positive_int(fn, "--classes", classes)
    check_memory_terms(fn, _memory_terms(cell, input_size, hidden, classes, steps, batch_size,
                                         {m: {k: v for k, v in given.items() if accepts(m, k)}
                                          for m in methods}), device)

    model = SequenceClassifier(cell, input_size, hidden, classes, init=init, seed=seed,
                               device=device)
    xs, ys = _cli_batch(fn, data, data_root, batch_size, steps, input_size, classes, seed)
    xs, ys = xs.to(device), ys.to(device)
    masks, tables, summaries = {}, {}, {}
    for m in methods:
        opts = {k: v for k, v in given.items() if accepts(m, k)}
        if m == "synflow":
            opts["density"] = density
        scores = compute_scores(m, model, (xs, ys), generator=torch.Generator().manual_seed(
            seed + 2), include_bias=include_bias, **opts)
        masks[m] = topk_mask(scores, density, scope=scope)
        tables[m] = mask_anatomy(model.cell, masks[m], input_size, hidden)
        summaries[m] = anatomy_summary(model.cell, masks[m], input_size, hidden)

    first = tables[methods[0]]
    kept, total = int(first["kept"].sum()), int(first["total"].sum())
    click.echo(f"{model.cell.name} D={input_size} N={hidden}, init {init}, data {data} "
               f"(B={batch_size}, T={steps}), seed {seed}, sparsity {sparsity}: keep {kept:,} of "
               f"{total:,} {'entries' if include_bias else 'weights'} ({scope})")
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
    if out is not None:
        config = {"cell": model.cell.name, "input_size": input_size, "hidden_size": hidden,
                  "classes": classes, "steps": steps, "batch_size": batch_size, "init": init,
                  "sparsity": sparsity, "density": density, "scope": scope,
                  "include_bias": include_bias, "data": data, "seed": seed, "options": given}
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)  # --out DIR/: DIR may be new
        path = save_masks(out, masks, config)
        click.echo(f"wrote {path}")


def _memory_terms(cell: str, input_size: int, hidden: int, classes: int, steps: int,
                  batch_size: int, opts: dict[str, dict]) -> dict[str, int]:
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
             f"--steps {steps} and --batch-size {batch_size}: the (T, B, D) scoring batch and "
             "its (T, B, S) states": steps * batch_size * (input_size + S)}
    for m, given in opts.items():
        if given.get("normalize", OPTIONS[m].get("normalize")) != "gamma":
            continue
        t = given.get("gamma_steps", OPTIONS[m].get("gamma_steps")) or steps
        b = given.get("gamma_sequences", OPTIONS[m].get("gamma_sequences")) or batch_size
        terms[f"--gamma-steps {t} and --gamma-sequences {b}: the (T̃, B̃, D) γ batch and its "
              "states"] = t * b * (input_size + S)
    return terms
