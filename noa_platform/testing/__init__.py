"""Testing domains: the conformance kit and a toy domain.

* :func:`check_domain` runs every named check of the plugin contract on a domain and returns a
  :class:`CheckReport` (pass / fail / skip with a one-line reason each); it never raises for a
  broken domain. ``noa plugins check NAME`` prints it.
* :func:`parametrize_with_checks` runs each check as its own pytest test.
* :data:`CHECKS` lists the checks; :func:`yield_checks` selects some by name.
* :class:`ToyDomain` is a tiny exact domain for testing the platform itself.
"""

from noa_platform.testing.kit import CHECKS, DomainCheck, check_domain, yield_checks
from noa_platform.testing.pytest_helpers import parametrize_with_checks, record_stepper_steps
from noa_platform.testing.report import CheckFailed, CheckReport, CheckResult, CheckSkipped
from noa_platform.testing.toy_domain import ToyDomain

__all__ = [
    "CHECKS",
    "CheckFailed",
    "CheckReport",
    "CheckResult",
    "CheckSkipped",
    "DomainCheck",
    "ToyDomain",
    "check_domain",
    "parametrize_with_checks",
    "record_stepper_steps",
    "yield_checks",
]
