"""The ``noa`` command group and how it turns errors into one line."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from noa_platform import __version__
from noa_platform.errors import NoaError


class NoaGroup(click.Group):
    """A click group that prints :class:`NoaError` as ``error: ...`` and exits 1.

    An OS error that no command put into words (a permission, a missing folder, a read-only
    file system, a full disk; h5py's and SQLite's included) is the user's environment rather
    than a bug, so it is printed the same way, naming its path
    (:func:`noa_platform.file_errors.error_line`). With ``--verbose`` the traceback is kept,
    for bug reports. Running out of memory is said the same way: a valid but too large
    grid, horizon, batch or model is the user's choice to revisit, not a crash to debug.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from noa_platform.file_errors import error_line, is_file_error

            if isinstance(exc, NoaError):
                message = str(exc)
            elif is_file_error(exc):
                message = error_line(exc)
            elif (memory := out_of_memory(exc)) is not None:
                message = memory
            else:
                raise
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            # split("\n"), not splitlines(): a user's string holding U+2028 or U+0085 stays on
            # its line rather than becoming a line that does not start with "error:".
            for line in message.split("\n") if message else ["unknown error"]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(1)


@click.group(cls=NoaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="noa")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug output.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """noa: learn physics across domains.

    Domains come from plugins; `noa domains list` shows what is installed.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def out_of_memory(exc: BaseException) -> str | None:
    """The one-line message for an allocation failure (Python's ``MemoryError``, PyTorch's CPU
    allocator's ``RuntimeError``, CUDA's ``OutOfMemoryError``), else None."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda's, matched without importing torch
        where = "GPU memory"
    elif isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError)
                                           and "can't allocate memory" in text):
        where = "memory"
    else:
        return None
    asked = re.search(r"tried to allocate (\d+) bytes", text)
    if asked:  # PyTorch's CPU wording, "[enforce fail at alloc_cpu.cpp:127] ...", said briefly
        detail = f" (tried to allocate {int(asked.group(1)) / 1e9:.3g} GB)"
    else:
        detail = f" ({text})" if text else ""
    return (f"out of {where}{detail}: the run asks for more than this machine has; lower the "
            "resolution, n_frames, batch_size or the architecture's size")


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
