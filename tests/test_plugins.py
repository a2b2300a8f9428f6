"""Plugin discovery and isolation: a broken plugin is recorded and skipped, never fatal."""

from __future__ import annotations

import types

import pluggy
import pytest

from noa_platform.errors import PluginError
from noa_platform.plugins import PluginRegistry, discover
from noa_platform.testing.toy_domain import ToyDomain

hookimpl = pluggy.HookimplMarker("noa_platform")


def make_plugin(api=2, **hooks) -> types.ModuleType:
    mod = types.ModuleType("inproc")
    mod.NOA_PLUGIN_API = api
    for name, fn in hooks.items():
        setattr(mod, name, hookimpl(fn))
    return mod


def test_in_process_plugin_provides_a_domain():
    reg = PluginRegistry()
    rec = reg.register(make_plugin(noa_domains=lambda: [ToyDomain("t1")]), "p1")
    assert rec.status == "loaded" and rec.hooks == ["noa_domains"]
    assert reg.domain("t1").name == "t1"
    assert reg.owners[("domains", "t1")] == "p1"
    assert rec.provides == {"domains": ["t1"]}


@pytest.mark.parametrize(
    "plugin, fragment",
    [
        (make_plugin(api=1, noa_domains=lambda: []), "targets plugin API 1, this platform "
         "provides 2; to update, contract v2: channels are Channel"),
        (make_plugin(noa_domains=lambda x: []), "invalid hook implementation"),
        (make_plugin(noa_domain=lambda: []), "unknown hook(s) noa_domain"),
        (make_plugin(noa_domains=lambda: 1 / 0), "hook noa_domains raised ZeroDivisionError"),
        (make_plugin(noa_domains=lambda: ["not a domain"]), "expected Domain"),
        (make_plugin(noa_domains=lambda: None), "not a list"),
    ],
    ids=["api", "signature", "misspelled", "raises", "wrong-type", "not-list"],
)
def test_bad_plugins_fail_alone(plugin, fragment):
    reg = PluginRegistry()
    reg.register(make_plugin(noa_domains=lambda: [ToyDomain("ok")]), "good")
    rec = reg.register(plugin, "bad")
    assert rec.status == "failed"
    assert fragment in rec.error
    assert list(reg.domains) == ["ok"]
    # The failed plugin is not left registered with pluggy either.
    assert reg.manager.get_plugin("bad") is None


def test_missing_api_declaration_fails():
    mod = types.ModuleType("noapi")
    mod.noa_domains = hookimpl(lambda: [])
    rec = PluginRegistry().register(mod, "noapi")
    assert rec.status == "failed" and "NOA_PLUGIN_API" in rec.error


def test_duplicate_domain_is_rejected_atomically():
    reg = PluginRegistry()
    reg.register(make_plugin(noa_domains=lambda: [ToyDomain("same")]), "first")
    rec = reg.register(make_plugin(noa_domains=lambda: [ToyDomain("other"), ToyDomain("same")]),
                       "second")
    assert rec.status == "failed"
    assert "'same' is already provided by plugin 'first'" in rec.error
    # Nothing of the failed plugin was kept, not even its non-conflicting domain.
    assert sorted(reg.domains) == ["same"]


def test_unknown_domain_names_the_known_ones():
    reg = PluginRegistry()
    reg.register(make_plugin(noa_domains=lambda: [ToyDomain("t1")]), "p1")
    with pytest.raises(PluginError, match="unknown domain 'nope'; known: t1"):
        reg.domain("nope")


def test_entry_point_discovery_isolates_broken_distributions(fixture_plugins):
    reg = discover(env={})
    by_name = {r.name: r for r in reg.records}
    assert by_name["noa-platform"].status == "loaded"
    good = by_name["a-good"]
    assert (good.status, good.distribution, good.version) == ("loaded", "noa-fixture-good", "1.0")
    assert "good-toy" in reg.domains
    assert by_name["b-import-error"].status == "failed"
    assert "import failed: RuntimeError: this plugin is broken on purpose" in \
        by_name["b-import-error"].error
    assert by_name["c-bad-signature"].status == "failed"
    assert "unexpected_argument" in by_name["c-bad-signature"].error
    assert "unknown hook(s) noa_domain" in by_name["d-misspelled"].error
    assert "targets plugin API 99" in by_name["e-wrong-api"].error
    assert "future-toy" not in reg.domains
    assert "already provided by plugin 'a-good'" in by_name["z-duplicate"].error


def test_allow_and_block_lists(fixture_plugins):
    reg = discover(env={"NOA_PLUGINS": "a-good"})
    statuses = {r.name: r.status for r in reg.records}
    assert statuses["a-good"] == "loaded"
    assert statuses["b-import-error"] == "skipped"
    assert statuses["noa-platform"] == "loaded"  # built-ins are not plugins one can drop

    reg = discover(env={"NOA_DISABLE_PLUGINS": "noa-fixture-good,b-import-error"})
    by_name = {r.name: r for r in reg.records}
    assert by_name["a-good"].status == "skipped"
    assert by_name["a-good"].error == "disabled by NOA_DISABLE_PLUGINS"
    assert by_name["b-import-error"].status == "skipped"
    # With the first owner disabled, the duplicate is now the only provider of good-toy.
    assert by_name["z-duplicate"].status == "loaded"
