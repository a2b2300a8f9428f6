"""Post-training evaluation: rollout metrics, MNO/CNO agreement, verdicts and pictures.

* :mod:`~noa_platform.evaluation.rollout_metrics` — per-step VRMSE/nRMSE, persistence
  baseline, error by spectral band, correlation time, invariant drift (pure tensor functions).
* :mod:`~noa_platform.evaluation.agreement` — token agreement and latent alignment measures.
* :mod:`~noa_platform.evaluation.verdicts` — the threshold table and good/fair/poor verdicts.
* :mod:`~noa_platform.evaluation.plots` — PNG pictures (matplotlib, Agg canvas).

docs/validation.md explains each number. Modules are imported on demand so that using the
metrics does not load matplotlib.
"""
