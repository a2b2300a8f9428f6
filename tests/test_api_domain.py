"""Contract v2 pieces of the Domain: channels with roles, invariants, default architecture."""

from __future__ import annotations

import pytest

from noa_platform.api import Channel, Domain
from noa_platform.testing.toy_domain import ToyDomain


def test_channel_roles_are_checked():
    assert Channel("u").role == "state"
    assert Channel("u_t", "rate", "m/s", rate_of="u").describe() == {
        "name": "u_t", "role": "rate", "units": "m/s", "rate_of": "u"}
    with pytest.raises(ValueError, match="role must be one of"):
        Channel("u", "speed")
    with pytest.raises(ValueError, match="names its state"):
        Channel("u_t", "rate")


def test_bare_channel_names_become_state_channels():
    class Named(Domain):
        channels = ("a", "b")

    assert Named.channels == (Channel("a"), Channel("b"))


def test_architecture_config_layers_on_the_domain_default():
    d = ToyDomain()
    d.default_architecture = {"name": "u-afno", "levels": 2, "modes": 4}
    assert d.architecture_config({"modes": 8}) == {"name": "u-afno", "levels": 2, "modes": 8}
    # Naming another architecture drops the default's keys, which belong to the default.
    assert d.architecture_config({"name": "other", "width": 3}) == {"name": "other", "width": 3}


def test_describe_reports_the_v2_contract():
    desc = ToyDomain().describe()
    assert desc["channels"][0] == {"name": "u0", "role": "state", "units": ""}
    assert desc["invariants"]["mean"]["conserved"] is False
    assert desc["default_architecture"] == {"name": "u-afno"}
    assert "persistence" in desc["baselines"]
