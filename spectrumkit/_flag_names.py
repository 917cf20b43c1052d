"""The flag of a score option field, shared by ``spectrumkit train``'s flags (derived from the run
configuration) and the other commands (NOTE [One CLI vocabulary] in :mod:`spectrumkit.cli`).

Torch-free: the run configuration and the command line both read it at import.
"""

__all__ = ["SCORE_OPTION_FLAGS", "option_flag"]

#: Score option fields whose flag carries the name of the one method that takes them; every other
#: field's flag is ``--`` + its name with dashes.
SCORE_OPTION_FLAGS = {"iterations": "synflow-rounds", "probes": "hutchinson-probes"}


def option_flag(field: str) -> str:
    """The flag of a score option field: ``probes`` → ``--hutchinson-probes``, ``gamma_steps`` →
    ``--gamma-steps``.

    >>> option_flag("iterations"), option_flag("gamma_steps")
    ('--synflow-rounds', '--gamma-steps')
    """
    return "--" + SCORE_OPTION_FLAGS.get(field, field).replace("_", "-")
