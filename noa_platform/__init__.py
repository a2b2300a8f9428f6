"""noa-platform: learn physics across domains with pluggable solvers and neural operators."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("noa-platform")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
