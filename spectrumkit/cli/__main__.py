"""``python -m spectrumkit.cli``."""

from . import main

main()
