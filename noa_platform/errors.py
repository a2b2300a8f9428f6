"""Exceptions that reach the user as one line.

Every error a user can cause (bad config, bad θ, bad file, broken plugin) derives from
:class:`NoaError`; the CLI prints ``error: <message>`` and exits 1 without a traceback unless
``--verbose`` is given. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class NoaError(Exception):
    """A user-facing failure; the message names what was wrong and where."""


class ParameterError(NoaError, ValueError):
    """A value of θ outside its parameter's range or choices."""


class ConfigError(NoaError):
    """A config file or preset that does not validate."""


class PluginError(NoaError):
    """A plugin that cannot be loaded or used, or a name no plugin provides."""


class DataError(NoaError):
    """A dataset file that is missing, truncated, foreign or inconsistent."""


class SolverError(NoaError):
    """A solver asked for something it cannot do (unstable step, non-finite input)."""
