"""Package attributes imported on first use (PEP 562), so importing a package stays cheap.

``noa plugins list`` and ``noa domains list`` must not import torch (see
``tests/test_cli_startup.py``); packages whose public names live in torch modules
(``noa_platform.features``, ``noa_platform.tokenizer``) map each name to its module and let
:func:`lazy_exports` build the module-level ``__getattr__`` and ``__dir__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(namespace: dict[str, Any], exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose ``namespace`` (its ``globals()``) lends
    each name of ``exports`` (name -> module path) from its module on first access."""
    package = namespace["__name__"]

    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
