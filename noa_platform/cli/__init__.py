"""The ``noa`` command line. Each module adds one noun's commands to :data:`main`."""

from noa_platform.cli import data, domains, plugins, train  # noqa: F401  (registers commands)
from noa_platform.cli.app import main

__all__ = ["main"]
