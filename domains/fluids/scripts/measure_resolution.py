"""Measure how far the enstrophy spectrum falls before the 2/3 cut-off at the presets' worst
corners (docs/fluids.md, "Resolution"). Usage::

    OMP_NUM_THREADS=1 python domains/fluids/scripts/measure_resolution.py [quick|standard]

For each corner (lowest ν, strongest forcing of the preset box, every forcing wavenumber, no
and most drag) it simulates burn-in + stored frames in float32 from a multiscale initial
vorticity, and prints the decades ``log10(max_k Z(k) / Z(k_c))`` of the time-mean spectrum of
the stored frames, the worst single stored frame, and the energy's mean and coefficient of
variation over the stored frames.
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np
import torch
from noa_fluids.diagnostics import cutoff_shell, decades_at_cutoff, enstrophy_spectrum
from noa_fluids.domain import Fluids
from noa_fluids.invariants import energy

from noa_platform.config import domain_config
from noa_platform.data.simulate import simulate


def main(preset: str) -> None:
    domain = Fluids()
    gen = domain_config(domain, preset).generation
    space = domain.parameter_space
    box = {p.name: (p.low, p.high) for p in space.parameters}
    box.update({k: tuple(v) for k, v in gen.parameter_ranges.items()})
    nu, forcing = box["nu"][0], box["forcing"][1]
    rows = np.array([[nu, a, forcing, k] for a, k in itertools.product(
        (box["alpha"][0], box["alpha"][1]), range(int(box["forcing_k"][0]),
                                                  int(box["forcing_k"][1]) + 1))])
    res, burn, frames = gen.resolution, gen.burn_in_frames, gen.n_frames
    start = time.perf_counter()
    traj = simulate(domain, rows, list(range(len(rows))), ["multiscale"] * len(rows),
                    n_frames=burn + frames, resolution=res)
    elapsed = time.perf_counter() - start
    grid = domain.grid_for(res)
    stored = traj[:, burn:, 0].double()
    z = enstrophy_spectrum(stored, grid).mean(dim=1)
    mean_dec = torch.log10(z.amax(-1) / z[:, cutoff_shell(grid)])
    worst = decades_at_cutoff(stored, grid).amin(dim=1)
    e = energy(traj[:, burn:], grid)
    print(f"{preset}: {res}², burn-in {burn} + {frames} frames of {domain.frame_dt}, cut-off "
          f"shell {cutoff_shell(grid)}, {elapsed:.0f} s")
    for i, row in enumerate(rows):
        print(f"  nu={row[0]:g} alpha={row[1]:g} F={row[2]:g} n={row[3]:g}: "
              f"{mean_dec[i]:.2f} decades (time-mean spectrum), worst frame {worst[i]:.2f}; "
              f"E {e[i].mean():.3f} ± {e[i].std() / e[i].mean():.1%}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "standard")
