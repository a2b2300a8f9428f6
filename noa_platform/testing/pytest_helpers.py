"""Running the kit under pytest: each check of each domain as its own test."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from noa_platform.api import Domain
from noa_platform.testing.kit import yield_checks


def parametrize_with_checks(domains: Iterable[Domain], *,
                            select: Iterable[str] | None = None) -> Any:
    """A ``pytest.mark.parametrize`` over ``(domain, check)`` pairs, ids ``DOMAIN-CHECK``::

        from noa_platform.testing import parametrize_with_checks

        @parametrize_with_checks([MyDomain()])
        def test_conformance(domain, check):
            check(domain)

    ``check(domain)`` raises :class:`AssertionError` with the reason when the domain breaks
    the check's promise, and skips the test when the check does not apply.
    """
    import pytest

    domains = list(domains)
    checks = yield_checks(select)
    params = [pytest.param(d, c, id=f"{d.name}-{c.name}") for d in domains for c in checks]
    return pytest.mark.parametrize("domain, check", params)


def record_stepper_steps(monkeypatch: Any) -> list[float]:
    """The internal step ``dt`` of every stepper the spectral template builds from now on
    (one per group and plan), in order: a test of a solver's step plan reads it after a
    rollout. ``monkeypatch`` is pytest's fixture; the patch ends with the test."""
    from noa_platform.numerics import template

    built: list[float] = []
    real = template.make_stepper

    def spy(integrator, *, dt, **kwargs):
        built.append(dt)
        return real(integrator, dt=dt, **kwargs)

    monkeypatch.setattr(template, "make_stepper", spy)
    return built
