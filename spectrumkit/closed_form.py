"""The former private names of the closed-form engine, for the modules that still import them
(spectra.py): ``_closed_form.py`` and ``_steps.py`` hold the plain names."""

from ._closed_form import graph_free as _graph_free  # noqa: F401
from ._steps import iter_closed_form_steps as _iter_closed_form_steps  # noqa: F401
