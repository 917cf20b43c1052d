"""The one spelling of a device: ``auto``, ``cpu``, ``cuda`` or ``cuda:K`` (torch-free).

NOTE [Device names]
Every command that computes takes ``--device`` in the same four forms, and a study's run options
take the same words. The form is checked here, where the text enters, without importing torch, so
``tpu`` or ``cuda:x`` is one line naming the flag before anything is loaded. Whether the device is
there (a GPU, the index K below the device count) is a question for torch, answered when the run
starts (:func:`spectrumkit.evaluation.resolve_device`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from .errors import fail

__all__ = ["DEVICE_FORMS", "DeviceName", "check_device_name"]

#: The forms a device name takes, as messages and help texts spell them.
DEVICE_FORMS = "auto, cpu, cuda or cuda:K"

_DEVICE = re.compile(r"auto|cpu|cuda(:(0|[1-9][0-9]{0,3}))?")


def check_device_name(fn: str, name: str, value: Any) -> str:
    """``value`` must be ``auto``, ``cpu``, ``cuda`` or ``cuda:K`` (K a device index).

    >>> check_device_name("f", "--device", "cuda:1")
    'cuda:1'
    >>> check_device_name("f", "--device", "tpu")
    Traceback (most recent call last):
    spectrumkit.errors.SpectrumkitError: f: expected --device auto, cpu, cuda or cuda:K, got 'tpu'
    """
    if not isinstance(value, str) or _DEVICE.fullmatch(value) is None:
        raise fail(fn, f"{name} {DEVICE_FORMS}", repr(value))
    return value


def _device_field(value: Any) -> str:
    return check_device_name("device", "device", value)


#: A pydantic field holding a device name (NOTE [Device names]).
DeviceName = Annotated[str, AfterValidator(_device_field)]
