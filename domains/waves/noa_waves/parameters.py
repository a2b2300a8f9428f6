"""θ of the waves domain and the columns every other module reads.

θ has four columns (physical values, float64)::

    column  name                 range          meaning
    0       c                    [0.5, 1.0]     mean speed c̄ (domain lengths per time unit)
    1       speed_amplitude      [0, 0.4]       a: relative amplitude of the speed field
    2       correlation_length   [0.1, 0.4]     ℓ: correlation length of the speed field (log)
    3       gamma                [0, 1]         γ: damping rate

The speed field is ``c(x) = c̄ (1 + a tanh g(x))`` with ``g`` a smooth Gaussian random field of
correlation length ℓ drawn from the sample's seed (:mod:`noa_waves.speed`), so
``c̄ (1 − a) < c(x) < c̄ (1 + a)`` whatever the draw. With ``a = 0`` the medium is uniform and
ℓ is not used (but stays in θ: a fixed-width vector, no categorical switch).

Nothing here imports torch.
"""

from __future__ import annotations

import numpy as np

from noa_platform.api import LinearParameter, LogParameter, ParameterSpace

PARAMETER_SPACE = ParameterSpace([
    LinearParameter("c", "mean wave speed c̄ (domain lengths per time unit)", low=0.5, high=1.0),
    LinearParameter("speed_amplitude", "relative amplitude a of the speed field: "
                    "c(x) = c̄ (1 + a tanh g(x))", low=0.0, high=0.4),
    LogParameter("correlation_length", "correlation length ℓ of the speed field g "
                 "(domain lengths)", low=0.1, high=0.4),
    LinearParameter("gamma", "damping rate γ (per time unit)", low=0.0, high=1.0),
])

COL_C, COL_AMPLITUDE, COL_LENGTH, COL_GAMMA = range(4)


def columns(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(c̄, a, ℓ, γ)``, each ``[b]``, from θ rows ``[b, 4]`` (array or tensor)."""
    if hasattr(theta, "detach"):
        theta = theta.detach().cpu().numpy()
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    return (theta[:, COL_C], theta[:, COL_AMPLITUDE], theta[:, COL_LENGTH],
            theta[:, COL_GAMMA])


def max_speed(theta: np.ndarray) -> np.ndarray:
    """``[b]``: ``c̄ (1 + a)``, a bound on ``c(x)`` for every draw of the speed field."""
    c, a, _, _ = columns(theta)
    return c * (1.0 + a)
