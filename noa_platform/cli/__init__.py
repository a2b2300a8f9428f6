"""The ``noa`` command line. Each module adds one noun's commands to :data:`main`."""

# Importing a module registers its commands.
from noa_platform.cli import (  # noqa: F401
    align, data, domains, plugins, registry, report, train, transfer,
)
from noa_platform.cli.app import main
from noa_platform.cli.plugin_authoring import check_plugin, new_plugin

# The author's commands live in their own module; they belong to the `noa plugins` group.
plugins.plugins.add_command(check_plugin)
plugins.plugins.add_command(new_plugin)

__all__ = ["main"]
