"""Channel pooling: from per-channel statistics to a feature space that ignores channel count.

Every statistic is computed per channel, ``[..., C, K]``, then reduced over channels by the
mean and the max, giving ``[..., 2K]`` columns whatever ``C`` is. A scalar field and the same
field copied into several channels give identical features; a field whose channels behave
differently shows it through ``max > mean``. The max is used rather than a standard deviation
because it keeps the units of the statistic and needs no square root at zero spread.
"""

from __future__ import annotations

import torch
from torch import Tensor

# The pools' names and the column names they give (``CHANNEL_POOLS``, ``pooled_names``) are in
# :mod:`noa_platform.features.names`, which registering the families reads without torch.


def pool_channels(x: Tensor) -> Tensor:
    """``[..., C, K] -> [..., 2K]``: channel mean of every column, then channel max."""
    return torch.cat([x.mean(dim=-2), x.amax(dim=-2)], dim=-1)

