"""``python -m spectrumkit.cli``: the ``spectrumkit`` command, under its own name (usage lines,
and shell completion through ``_SPECTRUMKIT_COMPLETE``, NOTE [Shell completion])."""

from . import main

main(prog_name="spectrumkit")
