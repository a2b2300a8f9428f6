"""The learned operator a domain proposes: it builds, trains a step and listens to θ."""

from __future__ import annotations

import torch

from noa_platform.api import Domain
from noa_platform.config import domain_config
from noa_platform.testing.probe import Probe, quick_generation
from noa_platform.testing.report import CheckFailed


def check_architecture(domain: Domain, probe: Probe) -> str:
    from noa_platform.models import ArchitectureConfigError, build_architecture

    try:
        preset_arch = domain_config(domain, "quick").mno.architecture
    except Exception:
        preset_arch = {}
    config = domain.architecture_config(preset_arch)
    c, p = len(domain.channels), domain.parameter_space.dim
    torch.manual_seed(0)
    # At the probe's coarse grid when the model accepts it (cheap), else at the preset's.
    res = probe.resolution
    try:
        model = build_architecture(config, channels=c, n_params=p, resolution=res)
    except ArchitectureConfigError:
        res = quick_generation(domain).resolution
        model = build_architecture(config, channels=c, n_params=p, resolution=res)
    local = probe if res == probe.resolution else Probe(domain, res, probe.horizon)

    values = local.varied(2)
    theta = torch.as_tensor(domain.conditioning(values))
    u = local.initial(2)
    target = torch.roll(u, shifts=1, dims=-1)  # any fixed map will do for one step
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [q.detach().clone() for q in model.parameters()]
    model.train()
    out = model(u, theta)
    if tuple(out.shape) != tuple(u.shape):
        raise CheckFailed(f"architecture {config.get('name')!r} maps {list(u.shape)} to "
                          f"{list(out.shape)}; it must return the next frame's shape")
    loss = torch.nn.functional.mse_loss(out, target)
    opt.zero_grad()
    loss.backward()
    grads = [q.grad for q in model.parameters() if q.grad is not None]
    if not torch.isfinite(loss) or not grads or not all(torch.isfinite(g).all() for g in grads):
        raise CheckFailed(f"one training step gave loss {float(loss):.3g} and "
                          f"{len(grads)} finite gradient tensor(s)")
    opt.step()
    if all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())):
        raise CheckFailed("one optimizer step changed no weight")

    model.eval()
    with torch.no_grad():
        same_u = u[:1].expand(2, -1, -1, -1)
        pair = model(same_u, theta)
    if not torch.isfinite(pair).all():
        raise CheckFailed("the trained model's output is not finite")
    if torch.equal(pair[0], pair[1]):
        raise CheckFailed("the output does not depend on θ: two conditioning rows "
                          "(domain.conditioning) gave identical next frames")
    n_weights = sum(q.numel() for q in model.parameters())
    return (f"{config.get('name')} ({n_weights:,} weights) at {res}²: trains a step, "
            "output depends on θ")
