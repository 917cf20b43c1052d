"""Shared test settings: hypothesis profiles and small helpers.

The ``ci`` profile (derandomized, no deadline, bounded examples) is the default; set
``HYPOTHESIS_PROFILE=dev`` for a longer randomized search.
"""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=25, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, atol: float, rtol: float = 0.0,
                 what: str = "") -> None:
    """``torch.testing.assert_close`` that prints the differing entries (it does) with a label."""
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{what}\n{m}")
