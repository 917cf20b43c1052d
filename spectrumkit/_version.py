"""The installed version of the package, read once from its metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("spectrumkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0+source"
