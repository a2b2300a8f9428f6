"""Checks on the features handed to the tokenizer; each failure is a one-line DataError.

The tokenizer refuses rather than guesses: NaN or Inf values (named by family, column and row
count), a family missing or unexpected, a wrong number of columns or of dimensions, families
that disagree on the number of trajectories, and column names that differ from the ones it was
fitted on (listing the missing and unexpected names). Columns with the right names in another
order are reordered, since the names say unambiguously where each column goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from noa_platform.errors import DataError

#: How many names an error message lists before it says "and N more".
LISTED = 5


def _list(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:LISTED])
    more = len(names) - LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def as_tensor(family: str, value: object) -> torch.Tensor:
    """A family's values as a floating tensor (NumPy arrays accepted; gradients kept)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise DataError(f"feature {family!r} must be a tensor or array, got {type(value).__name__}")
    if not torch.is_floating_point(value):
        value = value.float()
    return value


def check_names(names: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Feature names per family: non-empty, unique within a family."""
    if not isinstance(names, Mapping) or not names:
        raise DataError("feature names must be a non-empty dict of family -> column names")
    out = {}
    for family, cols in names.items():
        cols = tuple(str(c) for c in cols)
        if not cols:
            raise DataError(f"feature {family!r} has no column names")
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise DataError(f"feature {family!r} has duplicate column names {_list(dupes)}")
        out[str(family)] = cols
    return out


def check_finite(family: str, x: torch.Tensor, names: Sequence[str]) -> None:
    """Refuse NaN/Inf, naming the first bad column and how many trajectories (rows) hold it."""
    with torch.no_grad():
        finite = torch.isfinite(x)
        if bool(finite.all()):
            return
        xs = x.detach()
        # Per trajectory and column: any bad value over time for a temporal family.
        nan = torch.isnan(xs)
        inf = torch.isinf(xs)
        if xs.ndim == 3:
            nan, inf = nan.any(1), inf.any(1)
        bad_cols = torch.nonzero((nan | inf).any(0)).flatten().tolist()
        col = bad_cols[0]
        parts = []
        if int(nan[:, col].sum()):
            parts.append(f"NaN in {_rows(int(nan[:, col].sum()))}")
        if int(inf[:, col].sum()):
            parts.append(f"Inf in {_rows(int(inf[:, col].sum()))}")
        others = len(bad_cols) - 1
        tail = f" (and {others} more column{'s' if others > 1 else ''})" if others else ""
        raise DataError(f"feature {family!r} column {names[col]!r} has {' and '.join(parts)}{tail}")


def check_shapes(family: str, x: torch.Tensor, n_cols: int, temporal: bool | None) -> None:
    if temporal is None:
        if x.ndim not in (2, 3):
            raise DataError(
                f"feature {family!r} must be [N, D] or [N, T+1, D], got shape {list(x.shape)}"
            )
    elif x.ndim != (3 if temporal else 2):
        want = "[N, T+1, D] (temporal)" if temporal else "[N, D]"
        raise DataError(f"feature {family!r} must be {want}, got shape {list(x.shape)}")
    if x.shape[0] == 0 or (x.ndim == 3 and x.shape[1] == 0):
        raise DataError(f"feature {family!r} is empty (shape {list(x.shape)})")
    if x.shape[-1] != n_cols:
        raise DataError(
            f"feature {family!r} has {x.shape[-1]} columns, expected {n_cols} (one per name)"
        )


def check_rows(features: Mapping[str, torch.Tensor]) -> int:
    counts = {f: int(x.shape[0]) for f, x in features.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{f} has {n}" for f, n in counts.items())
        raise DataError(f"feature families disagree on the number of trajectories: {listed}")
    return next(iter(counts.values()))


def check_fit_inputs(
    features: Mapping[str, object], names: Mapping[str, Sequence[str]]
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
    """Validate training features against their names; returns tensors and clean names."""
    names = check_names(names)
    if not isinstance(features, Mapping) or not features:
        raise DataError("features must be a non-empty dict of family -> tensor")
    missing = [f for f in names if f not in features]
    extra = [f for f in features if f not in names]
    if missing or extra:
        raise DataError(_family_mismatch(missing, extra, "names are given"))
    out = {}
    for family, cols in names.items():
        x = as_tensor(family, features[family])
        check_shapes(family, x, len(cols), None)
        check_finite(family, x, cols)
        out[family] = x
    check_rows(out)
    return out, names


def _family_mismatch(missing: list[str], extra: list[str], known: str) -> str:
    parts = []
    if missing:
        parts.append(f"missing famil{'y' if len(missing) == 1 else 'ies'} {_list(missing)}")
    if extra:
        parts.append(f"unexpected famil{'y' if len(extra) == 1 else 'ies'} {_list(extra)}")
    return f"feature families do not match the ones {known}: " + "; ".join(parts)


def check_features(
    features: Mapping[str, object],
    expected: Mapping[str, tuple[tuple[str, ...], bool]],
    names: Mapping[str, Sequence[str]] | None = None,
    *,
    finite: bool = True,
) -> dict[str, torch.Tensor]:
    """Validate features against what a fitted tokenizer expects.

    ``expected`` maps each family to ``(column names, temporal)``. When ``names`` are given they
    must hold the same columns per family; columns given in another order are reordered to the
    tokenizer's order. ``finite=False`` skips the NaN/Inf scan (for a caller, such as the MNO
    trainer, that handles non-finite losses itself).
    """
    if not isinstance(features, Mapping):
        raise DataError(
            f"features must be a dict of family -> tensor, got {type(features).__name__}"
        )
    missing = [f for f in expected if f not in features]
    extra = [f for f in features if f not in expected]
    if missing or extra:
        raise DataError(_family_mismatch(missing, extra, "the tokenizer was fitted on"))
    out = {}
    for family, (cols, temporal) in expected.items():
        x = as_tensor(family, features[family])
        if names is not None:
            x = _reorder(family, x, tuple(str(c) for c in names.get(family, ())), cols)
        check_shapes(family, x, len(cols), temporal)
        if finite:
            check_finite(family, x, cols)
        out[family] = x
    check_rows(out)
    return out


def _reorder(
    family: str, x: torch.Tensor, given: tuple[str, ...], cols: tuple[str, ...]
) -> torch.Tensor:
    if given == cols:
        return x
    missing = [c for c in cols if c not in given]
    extra = [c for c in given if c not in cols]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {_list(missing)}")
        if extra:
            parts.append(f"unexpected {_list(extra)}")
        raise DataError(
            f"feature {family!r} column names differ from the tokenizer's: " + "; ".join(parts)
        )
    if x.shape[-1] != len(given):
        raise DataError(f"feature {family!r} has {x.shape[-1]} columns but {len(given)} names")
    order = torch.tensor([given.index(c) for c in cols], device=x.device)
    return x.index_select(x.ndim - 1, order)
