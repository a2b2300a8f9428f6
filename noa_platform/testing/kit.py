"""The conformance kit: every named check a domain must pass, and :func:`check_domain`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from noa_platform.api import Domain
from noa_platform.testing import architecture_checks as arch
from noa_platform.testing import declaration_checks as decl
from noa_platform.testing import solver_checks as solv
from noa_platform.testing.probe import Probe
from noa_platform.testing.report import CheckFailed, CheckReport, CheckResult, CheckSkipped
from noa_platform.testing.time_limit import TIMED_OUT, CheckTimedOut, time_limit

#: Seconds one check may run before it fails as timed out. Generous: the built-in domains'
#: slowest check takes a few seconds at the probe's 16²; the limit is there to end a hang.
DEFAULT_CHECK_TIMEOUT = 120.0


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass(frozen=True)
class DomainCheck:
    """One named promise of the contract. ``fn(domain, probe)`` returns a note on success and
    raises :class:`CheckFailed` / :class:`CheckSkipped` otherwise (any other exception is a
    failure too). ``runs_solver``: the check calls ``domain.solver`` (after the solver has
    hung once, :func:`check_domain` does not call it again)."""

    name: str
    fn: Callable[[Domain, Probe], str]
    promise: str
    runs_solver: bool = False

    def run(self, domain: Domain, probe: Probe | None = None,
            timeout: float | None = DEFAULT_CHECK_TIMEOUT) -> CheckResult:
        """Run the check, failing it after ``timeout`` seconds (``None``: no limit; see
        :mod:`noa_platform.testing.time_limit`); never raises for a broken domain."""
        start = time.perf_counter()
        try:
            with time_limit(timeout):
                probe = probe or Probe(domain)
                note = self.fn(domain, probe)
            status, reason = "pass", note or "ok"
        except CheckTimedOut as exc:
            status, reason = "fail", (f"{exc}: a hang, or far too slow at the probe's "
                                      "size (`--timeout` raises the limit)")
        except CheckSkipped as exc:
            status, reason = "skip", str(exc)
        except CheckFailed as exc:
            status, reason = "fail", str(exc)
        except Exception as exc:  # a check that raises names the exception
            status, reason = "fail", f"raised {_error_line(exc)}"
        return CheckResult(self.name, status, reason, time.perf_counter() - start)

    def __call__(self, domain: Domain) -> None:
        """Run as a test: raise :class:`AssertionError` on failure, skip under pytest."""
        result = self.run(domain)
        if result.status == "fail":
            raise AssertionError(f"domain {getattr(domain, 'name', '?')!r} fails "
                                 f"{self.name}: {result.reason}")
        if result.status == "skip":
            import pytest

            pytest.skip(result.reason)

    def __repr__(self) -> str:  # readable pytest ids and failure headers
        return self.name


CHECKS: tuple[DomainCheck, ...] = (
    DomainCheck("attributes", decl.check_attributes,
                "name, version, description, grid, frame_dt, θ space, solver, ICs, defaults"),
    DomainCheck("channels", decl.check_channels, "channels are Channel(name, role, units)"),
    DomainCheck("parameter_reads", decl.check_parameter_reads,
                "reads is consistent, conditioning masks unread θ, the solver ignores them",
                runs_solver=True),
    DomainCheck("presets", decl.check_presets,
                "quick and standard exist, validate, and their architecture builds"),
    DomainCheck("initial_conditions", decl.check_initial_conditions,
                "each family gives seeded, finite float64 [n, C, H, W] on the CPU"),
    DomainCheck("invariants_signature", decl.check_invariants_signature,
                "fn(frames, grid, theta) returns one value per frame"),
    DomainCheck("rollout_shape", solv.check_rollout_shape,
                "rollout returns [B, T+1, C, H, W]", runs_solver=True),
    DomainCheck("dtype_and_device", solv.check_dtype_and_device,
                "output dtype and device follow u0", runs_solver=True),
    DomainCheck("frame_zero", solv.check_frame_zero, "frame 0 is u0 bit for bit", runs_solver=True),
    DomainCheck("replay", solv.check_replay, "a stored (θ, seed) replays bit for bit",
                runs_solver=True),
    DomainCheck("batch_independence", solv.check_batch_independence,
                "a sample alone equals the same sample in a batch", runs_solver=True),
    DomainCheck("finite_over_horizon", solv.check_finite_over_horizon,
                "finite over the quick horizon at the θ box's corners and Sobol points",
                runs_solver=True),
    DomainCheck("conserved_invariants", solv.check_conserved_invariants,
                "conserved invariants drift less than their rtol", runs_solver=True),
    DomainCheck("refuses_out_of_range_theta", solv.check_refuses_out_of_range_theta,
                "out-of-range θ is refused by an error naming the parameter", runs_solver=True),
    DomainCheck("refuses_non_finite_u0", solv.check_refuses_non_finite_u0,
                "a u0 with NaN or Inf is refused", runs_solver=True),
    DomainCheck("refuses_bad_frame_dt", solv.check_refuses_bad_frame_dt,
                "frame_dt 0, negative, NaN or Inf is refused", runs_solver=True),
    DomainCheck("architecture", arch.check_architecture,
                "the default architecture builds, trains a step and depends on θ"),
)


def yield_checks(select: Iterable[str] | None = None) -> tuple[DomainCheck, ...]:
    """The kit's checks, all or those named in ``select`` (an unknown name is an error)."""
    if select is None:
        return CHECKS
    names = list(select)
    known = {c.name: c for c in CHECKS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)


def check_domain(domain: Domain, *, select: Iterable[str] | None = None,
                 resolution: int | None = None,
                 on_result: Callable[[CheckResult], None] | None = None,
                 timeout: float | None = DEFAULT_CHECK_TIMEOUT) -> CheckReport:
    """Run the conformance kit on ``domain``; a table of named pass/fail/skip results.

    Never raises for a broken domain: a check that raises is a failure naming the exception,
    one that runs past ``timeout`` seconds fails as timed out (``None``: no limit), and once a
    check has timed out the remaining checks that call the solver are skipped, so a hanging
    solver costs one timeout rather than one per check. ``select`` runs only the named
    checks; ``resolution`` overrides the probe grid (default: the quick preset's resolution,
    at most 16); ``on_result`` is called after each check (the CLI prints rows as they come).
    """
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout}")
    report = CheckReport(str(getattr(domain, "name", type(domain).__name__)))
    try:
        probe: Probe | None = Probe(domain, resolution=resolution)
    except Exception:  # each check then reports what is missing on its own
        probe = None
    hung: str | None = None
    for check in yield_checks(select):
        if hung is not None and check.runs_solver:
            result = CheckResult(check.name, "skip", f"not run: the solver hung in {hung}")
        else:
            result = check.run(domain, probe, timeout)
            if (check.runs_solver and result.status == "fail"
                    and result.reason.startswith(TIMED_OUT)):
                hung = check.name
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report
