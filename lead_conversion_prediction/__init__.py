"""Lead conversion prediction: will a new signup become a paying customer?"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lead-conversion-prediction")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
