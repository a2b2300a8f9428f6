"""Entry point of the fluids plugin (group ``noa_platform``)."""

from __future__ import annotations

import pluggy

from noa_fluids.domain import Fluids

#: The plugin contract version this plugin targets (see ``noa_platform.api.PLUGIN_API_VERSION``).
NOA_PLUGIN_API = 2

hookimpl = pluggy.HookimplMarker("noa_platform")


@hookimpl
def noa_domains() -> list[Fluids]:
    return [Fluids()]
