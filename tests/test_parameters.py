"""The unit-cube mapping of θ: round trips, bounds, log scale, clear errors."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from noa_platform.api import (
    CategoricalParameter,
    IntegerParameter,
    LinearParameter,
    LogParameter,
    ParameterSpace,
)
from noa_platform.errors import ParameterError

unit = st.floats(0.0, 1.0, allow_nan=False)
finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def linear_params(draw):
    lo = draw(finite)
    hi = draw(st.floats(lo + max(1e-6, abs(lo) * 1e-6), lo + 1e6, allow_nan=False))
    return LinearParameter("x", low=lo, high=hi)


@st.composite
def log_params(draw):
    lo = draw(st.floats(1e-8, 1e6))
    hi = draw(st.floats(lo * 1.001, lo * 1e6))
    return LogParameter("x", low=lo, high=hi)


@settings(max_examples=200)
@given(p=st.one_of(linear_params(), log_params()), u=unit)
# Found by hypothesis: low + 1·(high − low) rounded above high.
@example(p=LinearParameter("x", low=-510015.0, high=14273.824360071623), u=1.0)
def test_continuous_round_trip_and_bounds(p, u):
    v = p.from_unit(np.array([u]))
    assert p.low <= v[0] <= p.high
    p.validate(v)
    assert p.to_unit(v)[0] == pytest.approx(u, abs=1e-9)


@given(p=log_params(), u1=unit, u2=unit)
def test_log_scale_is_uniform_in_log(p, u1, u2):
    v1, v2 = p.from_unit(np.array([u1, u2]))
    expected = (u2 - u1) * (math.log(p.high) - math.log(p.low))
    assert math.log(v2) - math.log(v1) == pytest.approx(expected, abs=1e-9 * max(1, abs(expected)))


@given(lo=st.integers(-50, 50), n=st.integers(1, 30), u=unit)
def test_integer_bins_round_trip(lo, n, u):
    p = IntegerParameter("n", low=lo, high=lo + n - 1)
    v = p.from_unit(np.array([u]))
    assert v[0] == round(v[0]) and lo <= v[0] <= lo + n - 1
    assert p.from_unit(p.to_unit(v))[0] == v[0]


@given(n=st.integers(1, 8), u=unit)
def test_categorical_round_trip(n, u):
    p = CategoricalParameter("c", choices=tuple(f"c{i}" for i in range(n)))
    v = p.from_unit(np.array([u]))
    assert p.from_unit(p.to_unit(v))[0] == v[0]
    assert p.choices[int(v[0])] == p.choices[p.index(p.choices[int(v[0])])]


def space() -> ParameterSpace:
    return ParameterSpace([
        LinearParameter("F", low=0.01, high=0.07),
        LogParameter("nu", low=1e-4, high=1e-2),
        CategoricalParameter("kinetics", choices=("gray-scott", "fitzhugh-nagumo")),
    ])


@given(u=st.lists(st.tuples(unit, unit, unit), min_size=1, max_size=20))
def test_space_round_trip(u):
    s = space()
    arr = np.array(u)
    values = s.from_unit(arr)
    s.validate(values)
    back = s.to_unit(values)
    np.testing.assert_allclose(back[:, :2], arr[:, :2], atol=1e-9)
    again = s.from_unit(back)
    np.testing.assert_allclose(again[:, :2], values[:, :2], rtol=1e-12)
    np.testing.assert_array_equal(again[:, 2], values[:, 2])  # discrete columns: exact


def test_out_of_range_names_the_parameter():
    s = space()
    with pytest.raises(ParameterError, match=r"parameter 'nu' = 0.5 is outside its range"):
        s.validate([[0.02, 0.5, 0]])
    with pytest.raises(ParameterError, match=r"'kinetics' = 2 is outside .*gray-scott"):
        s.validate([[0.02, 1e-3, 2]])
    with pytest.raises(ParameterError, match="'F' = nan"):
        s.validate([[float("nan"), 1e-3, 0]])
    with pytest.raises(ParameterError, match="θ has 4 columns, the parameter space .* has 3"):
        s.validate([[0.02, 1e-3, 0, 1]])


def test_encode_decode_by_name():
    s = space()
    row = s.encode({"F": 0.03, "nu": 1e-3, "kinetics": "fitzhugh-nagumo"})
    assert row.tolist() == [0.03, 1e-3, 1.0]
    assert s.decode(row) == {"F": 0.03, "nu": 1e-3, "kinetics": "fitzhugh-nagumo"}
    with pytest.raises(ParameterError, match="unknown choice 'brusselator'"):
        s.encode({"F": 0.03, "nu": 1e-3, "kinetics": "brusselator"})
    with pytest.raises(ParameterError, match="parameter 'nu' is missing"):
        s.encode({"F": 0.03, "kinetics": 0})
    with pytest.raises(ParameterError, match="unknown parameter"):
        s.encode({"F": 0.03, "nu": 1e-3, "kinetics": 0, "Fx": 1})


# ---------------------------------------------------------------- conditioning (contract v2)

KIN = ParameterSpace(
    [CategoricalParameter("law", choices=("a", "b")),
     LinearParameter("p", low=0.0, high=2.0),
     LinearParameter("q", low=-1.0, high=1.0),
     IntegerParameter("n", low=1, high=4)],
    reads={"law": {"a": ("p",), "b": ("q",)}},
)


@given(st.lists(st.tuples(unit, unit, unit, unit), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_conditioning_is_canonical_and_masked(rows):
    """Rows the solver treats alike (same bin, same read columns) condition alike."""
    u = np.asarray(rows, dtype=np.float64)
    values = KIN.from_unit(u)
    cond = KIN.conditioning(values)
    law = values[:, 0].astype(int)
    # Categorical and integer columns sit at the centre of their bin, whatever the raw draw.
    assert np.allclose(cond[:, 0], (law + 0.5) / 2, atol=1e-7)
    assert np.allclose(cond[:, 3], (values[:, 3] - 1 + 0.5) / 4, atol=1e-7)
    # The column the row's law does not read is exactly 0; the one it reads is its unit value.
    assert np.all(cond[law == 0, 2] == 0) and np.all(cond[law == 1, 1] == 0)
    assert np.allclose(cond[law == 0, 1], values[law == 0, 1] / 2, atol=1e-7)
    # Moving an unread column changes nothing.
    moved = values.copy()
    moved[law == 0, 2] = -moved[law == 0, 2]
    moved[law == 1, 1] = 2.0 - moved[law == 1, 1]
    assert np.array_equal(KIN.conditioning(moved), cond)


def test_active_mask_and_describe():
    values = KIN.encode({"law": "b", "p": 1.0, "q": 0.5, "n": 2})
    assert KIN.active(values).tolist() == [[True, False, True, True]]
    desc = {d["name"]: d for d in KIN.describe()}
    assert desc["law"]["reads"] == {"a": ["p"], "b": ["q"]}
    assert desc["p"]["read_when"] == {"law": ["a"]} and "read_when" not in desc["n"]


@pytest.mark.parametrize("reads, fragment", [
    ({"p": {"a": ()}}, "not categorical"),
    ({"law": {"a": ("p",)}}, "missing ['b']"),
    ({"law": {"a": ("p",), "b": ("zz",)}}, "'zz' is not another parameter"),
    ({"law": {"a": ("law",), "b": ()}}, "'law' is not another parameter"),
])
def test_bad_reads_are_refused(reads, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        ParameterSpace(list(KIN.parameters), reads=reads)
