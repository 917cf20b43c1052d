r"""Exact-K masks from scores; checking, applying, exporting to ``torch.nn.utils.prune``; files.

Legend: P = number of entries of the pruned set (or of one tensor for ``scope="per_tensor"``).

A mask is ``{name: BoolTensor}`` keyed and shaped like the scores (``model.prunable()``): True keeps
the entry. :func:`check_mask` is the one mask check of the package (masks, anatomy, training).
Mask anatomy (where the kept weights sit) lives in :mod:`spectrumkit.anatomy`.

NOTE [Exact-K ranking] (``spectrumkit/scores/ranking.py``) is the rule: exactly
K = ⌊density · P + ½⌋ entries are kept, the highest scores first, ties broken by position, lowest
first. For ``scope="global"`` the position is the index in the concatenation of the flattened
tensors in SORTED NAME order (so the mask does not depend on the order of the dict); for
``scope="per_tensor"`` it is the flat index within the tensor. The rule is a stable sort, hence
deterministic, and masks of the same scores are nested across densities.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from ._io import check_output_file, describe_read_error, open_regular, write_atomic
from .choices import SCOPES
from .errors import check_choice, check_unit_interval, fail
from .scores.ranking import k_of, top_k

__all__ = ["apply_mask", "check_mask", "density_from_sparsity", "load_masks", "save_masks",
           "to_torch_prune", "topk_mask"]



def density_from_sparsity(sparsity: float) -> float:
    """Density 1 − sparsity for a sparsity in [0, 1).

    >>> density_from_sparsity(0.95) == 1 - 0.95
    True
    """
    check_unit_interval("density_from_sparsity", "sparsity", sparsity, low_open=False,
                        high_open=True)
    return 1.0 - float(sparsity)


def _check_scores(fn: str, scores: Any) -> dict[str, torch.Tensor]:
    if not isinstance(scores, Mapping) or not scores:
        raise fail(fn, "scores as a non-empty dict {name: tensor}", type(scores).__name__)
    for n, s in scores.items():
        if not isinstance(s, torch.Tensor) or not s.is_floating_point():
            raise fail(fn, f"scores[{n!r}] a floating-point tensor",
                       getattr(s, "dtype", type(s).__name__))
        if s.numel() == 0:
            raise fail(fn, f"scores[{n!r}] with at least one entry", f"shape {tuple(s.shape)}")
        bad = int((~torch.isfinite(s)).sum())
        if bad:
            raise fail(fn, f"finite scores in {n!r}", f"{bad} NaN/Inf entries of {s.numel()}")
    return dict(scores)


def topk_mask(scores: Mapping[str, torch.Tensor], density: float, *, scope: str = "global"
              ) -> dict[str, torch.Tensor]:
    r"""Keep exactly K = round(density · P) highest-scoring entries (NOTE [Exact-K ranking]).

    Args:
        scores: ``{name: float tensor}``, e.g. from :func:`~spectrumkit.scores.compute_scores`;
            NaN or Inf is an error naming the tensor and the count.
        density: fraction kept, in (0, 1]; see :func:`density_from_sparsity`.
        scope: ``"global"`` (one K over all P entries) or ``"per_tensor"`` (K per tensor).

    Returns:
        ``{name: BoolTensor}`` of the scores' shapes and devices, True = keep.

    >>> m = topk_mask({"w": torch.tensor([[0.5, 2.0], [2.0, -1.0]])}, 0.5)
    >>> m["w"].tolist()
    [[False, True], [True, False]]
    """
    fn = "topk_mask"
    scores = _check_scores(fn, scores)
    check_unit_interval(fn, "density", density, low_open=True, high_open=False)
    check_choice(fn, "scope", scope, SCOPES)
    if scope == "per_tensor":
        out = {}
        for n, s in scores.items():
            k = k_of(density, s.numel())
            if k < 1:
                raise fail(fn, f"density × n to round to at least 1 in {n!r}",
                           f"n={s.numel()}, density={density} (K = 0)")
            out[n] = top_k(s.reshape(-1), k).view(s.shape)
        return out
    names = sorted(scores)
    sizes = [scores[n].numel() for n in names]
    P = sum(sizes)
    k = k_of(density, P)
    if k < 1:
        raise fail(fn, "density × n to round to at least 1", f"n={P}, density={density} (K = 0)")
    dev = scores[names[0]].device
    flat = torch.cat([scores[n].detach().reshape(-1).to(dev, torch.float64) for n in names])
    keep = dict(zip(names, top_k(flat, k).split(sizes)))
    return {n: keep[n].view(s.shape).to(s.device) for n, s in scores.items()}


def check_mask(fn: str, mask: Any, shapes: Mapping[str, tuple[int, ...]], *, what: str,
               require: Collection[str] = (), shape_note: str = "") -> dict[str, torch.Tensor]:
    r"""The one mask check: ``mask`` as ``{name: BoolTensor}`` over the tensors ``shapes``.

    Refused, each with one line ``fn: expected X, got Y`` naming the tensor: a mask that is not a
    non-empty dict; a name outside ``shapes`` (``what`` says what they are, e.g. ``"params"``); a
    name of ``require`` without an entry (``require`` is the set a mask must cover, e.g. every
    cell weight when training); an entry that is not a bool tensor, or not of its tensor's shape
    (``shape_note`` is added to the expected shape, e.g. the sizes it comes from).

    Returns:
        ``dict(mask)``, the same tensors.

    >>> check_mask("f", {"w": torch.ones(2, dtype=torch.bool)}, {"w": (2,), "b": (1,)},
    ...            what="params")["w"].tolist()
    [True, True]
    """
    if not isinstance(mask, Mapping) or not mask:
        raise fail(fn, "a mask as a non-empty dict {name: BoolTensor}", type(mask).__name__)
    unknown = sorted(set(mask) - set(shapes))
    if unknown:
        raise fail(fn, f"mask names among the {what} {sorted(shapes)}",
                   "unknown tensor " + ", ".join(map(repr, unknown)))
    for name in require:
        if name not in mask:
            raise fail(fn, f"a mask entry for every cell weight {sorted(require)} "
                       "(all-True keeps one dense)", f"none for {name!r}")
    for n, m in mask.items():
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise fail(fn, f"mask[{n!r}] to be a bool tensor",
                       getattr(m, "dtype", type(m).__name__))
        if tuple(m.shape) != tuple(shapes[n]):
            raise fail(fn, f"mask[{n!r}] of shape {tuple(shapes[n])}{shape_note}",
                       f"shape {tuple(m.shape)}")
    return dict(mask)


def apply_mask(params: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor], *,
               inplace: bool = False) -> dict[str, torch.Tensor]:
    r"""Zero the pruned entries: θ ⊙ m.

    By default returns a NEW dict: masked tensors are ``torch.where(m, θ, 0)`` (differentiable with
    respect to θ, with zero gradient at pruned entries); tensors without a mask are passed through
    unchanged (the same objects). With ``inplace=True`` the given tensors are zeroed in place under
    ``torch.no_grad()`` (e.g. ``nn.Parameter`` s during training, after each optimizer step) and the
    returned dict holds those same tensors.

    >>> p = {"w": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([9.0])}
    >>> apply_mask(p, {"w": torch.tensor([True, False, True])})["w"].tolist()
    [1.0, 0.0, 3.0]
    """
    fn = "apply_mask"
    if not isinstance(params, Mapping):
        raise fail(fn, "params as a dict {name: tensor}", type(params).__name__)
    mask = check_mask(fn, mask, {n: tuple(p.shape) for n, p in params.items()}, what="params")
    if not isinstance(inplace, bool):
        raise fail(fn, "inplace to be True or False", repr(inplace))
    out = dict(params)
    for n, m in mask.items():
        p = params[n]
        m = m.to(p.device)
        if inplace:
            with torch.no_grad():
                p.masked_fill_(~m, 0)
        else:
            out[n] = torch.where(m, p, torch.zeros((), dtype=p.dtype, device=p.device))
    return out


def to_torch_prune(module: nn.Module, mask: Mapping[str, torch.Tensor]) -> nn.Module:
    r"""Attach ``mask`` to a torch.nn module made by :func:`~spectrumkit.to_torch`.

    Uses ``torch.nn.utils.prune.custom_from_mask`` for each masked tensor (names are the cell's:
    ``weight_ih`` maps to ``weight_ih_l0`` on an ``nn.GRU``/``nn.LSTM``/``nn.RNN`` and to
    ``weight_ih`` on a ``*Cell``). The module is modified in place (torch.prune keeps the dense
    tensor as ``<name>_orig`` and the mask as ``<name>_mask`` buffer) and returned; its forward
    computes the masked cell. ``torch.nn.utils.prune.remove`` makes the pruning permanent.
    """
    fn = "to_torch_prune"
    if not isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        raise fail(fn, "an nn.RNN/LSTM/GRU or *Cell module (from spectrumkit.to_torch)",
                   type(module).__name__)
    suffix = "_l0" if isinstance(module, nn.RNNBase) else ""
    shapes = {}
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        t = getattr(module, name + suffix, None)
        if t is not None:
            shapes[name] = tuple(t.shape)
    mask = check_mask(fn, mask, shapes, what="tensors of the module")
    for n, m in mask.items():
        ref = getattr(module, n + suffix)
        prune.custom_from_mask(module, n + suffix, m.to(ref.device))
    return module


# --------------------------------------------------------------------------------------------------
# Mask files
# --------------------------------------------------------------------------------------------------
# NOTE [Mask files]
# One file holds the masks of one or more methods for one model: a dict
# {"kind": "spectrumkit.masks", "version": 1, "config": {...},
#  "masks": {method: {name: BoolTensor}}}
# written with torch.save to a temporary file in the target folder, fsynced, then os.replace'd —
# a reader never sees a half-written file. Tensors are saved on the CPU.

_KIND, _VERSION = "spectrumkit.masks", 1
_JSON_TYPES = (str, int, float, bool, type(None))


# NOTE [Mask file validation]
# save_masks refuses anything load_masks could not read back: torch.load(weights_only=True)
# rejects every pickled class outside plain containers and tensors, so the config must be
# JSON-like — exactly str, int, float, bool, None, and lists / tuples / dicts of them with str
# keys (a numpy scalar or a Path is a subclass or an object, and is refused, naming its key).
# load_masks checks the whole structure: an unreadable file, another kind or version, missing or
# empty masks, a non-bool mask tensor: each is one line naming the file.


def _check_json(fn: str, where: str, value: Any) -> None:
    if type(value) in _JSON_TYPES:
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _check_json(fn, f"{where}[{i}]", v)
        return
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise fail(fn, "a JSON-like config (str keys; str, int, float, bool, None, lists "
                           "and dicts)", f"key {k!r} ({type(k).__name__}) in {where}")
            _check_json(fn, f"{where}[{k!r}]", v)
        return
    raise fail(fn, "a JSON-like config (str keys; str, int, float, bool, None, lists and dicts)",
               f"{type(value).__module__}.{type(value).__name__} at {where}")


def save_masks(path: str | os.PathLike, masks: Mapping[str, Mapping[str, torch.Tensor]],
               config: Mapping[str, Any] | None = None) -> Path:
    """Write ``{method: mask}`` (and a JSON-like ``config``) atomically (NOTE [Mask files]).

    Everything is validated before anything is written (NOTE [Mask file validation]): method and
    tensor names are strings, every mask is a non-empty dict of bool tensors, and the config holds
    only what :func:`load_masks` can read back.
    """
    fn = "save_masks"
    if not isinstance(masks, Mapping) or not masks:
        raise fail(fn, "masks as a non-empty dict {method: {name: BoolTensor}}",
                   type(masks).__name__)
    payload_masks = {}
    for method, mask in masks.items():
        if not isinstance(method, str):
            raise fail(fn, "method names as strings", repr(method))
        if not isinstance(mask, Mapping) or not mask:
            raise fail(fn, f"masks[{method!r}] a non-empty dict of bool tensors",
                       type(mask).__name__ if not isinstance(mask, Mapping) else "{}")
        for n, m in mask.items():
            if not isinstance(n, str) or not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
                raise fail(fn, f"masks[{method!r}] a dict of bool tensors keyed by tensor name",
                           f"{n!r}: {getattr(m, 'dtype', type(m).__name__)}")
        payload_masks[method] = {n: m.detach().cpu() for n, m in mask.items()}
    if config is not None and not isinstance(config, Mapping):
        raise fail(fn, "config as a dict or None", type(config).__name__)
    config = dict(config or {})
    _check_json(fn, "config", config)
    path = Path(path)
    if not path.parent.exists():
        raise fail(fn, "an output path in an existing folder", str(path))
    check_output_file(fn, path)  # NOTE [Output paths]
    payload = {"kind": _KIND, "version": _VERSION, "config": config, "masks": payload_masks}
    return write_atomic(path, lambda f: torch.save(payload, f))  # NOTE [Atomic writes]


def load_masks(path: str | os.PathLike) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Read a file written by :func:`save_masks`: ``(masks {method: mask}, config)``.

    A file that is not such a file (unreadable, truncated, another kind or version, masks missing,
    empty or not bool) is a one-line :class:`SpectrumkitError` naming it (NOTE [Mask file
    validation]).
    """
    fn = "load_masks"
    path = Path(path)
    if not path.exists():
        raise fail(fn, "an existing mask file", str(path))
    expected = f"a {_KIND} file (from save_masks, 'spectrumkit prune' or 'spectrumkit train')"
    try:
        with open_regular(path) as f:  # NOTE [Reading back]: never a FIFO's blocking read
            payload = torch.load(f, map_location="cpu", weights_only=True)
    except OSError as e:
        raise fail(fn, expected, f"{path} ({describe_read_error(e)})") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same error for the user
        first = " ".join((str(e).strip().splitlines() or [""])[0].split())[:160]
        raise fail(fn, expected, f"{path} (unreadable: {type(e).__name__}: {first})") from None
    if not isinstance(payload, dict) or payload.get("kind") != _KIND:
        raise fail(fn, expected, str(path))
    if payload.get("version") != _VERSION:
        raise fail(fn, f"{expected} of version {_VERSION}",
                   f"{path} (version {payload.get('version')!r})")
    masks, config = payload.get("masks"), payload.get("config")
    if not isinstance(config, dict):
        raise fail(fn, f"{expected} with a config dict", f"{path} (config {type(config).__name__})")
    if not isinstance(masks, dict) or not masks:
        raise fail(fn, f"{expected} holding at least one mask",
                   f"{path} (masks {masks!r:.40})")
    for method, mask in masks.items():
        if not isinstance(method, str) or not isinstance(mask, dict) or not mask or not all(
                isinstance(n, str) and isinstance(m, torch.Tensor) and m.dtype == torch.bool
                for n, m in mask.items()):
            raise fail(fn, f"{expected}: every mask a non-empty dict of bool tensors",
                       f"{path} (masks[{method!r}] is not)")
    return masks, config
