"""Persistence VRMSE of a stored dataset split (aggregated like the report), per step, and
per sample at the last frame. usage: persistence.py DATASET [val|train]"""
import sys

import h5py
import numpy as np

path, split = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "val"
assert split != "test", "the test split is for the final table only"
with h5py.File(path) as f:
    idx = np.sort(f[f"splits/{split}"][:])
    x = f["trajectories"][idx].astype(np.float64)  # N T C H W
    th = f["theta"][idx] if "theta" in f else None
N, T = x.shape[:2]
def vr(pred, true):
    d = ((pred - true) ** 2).sum(axis=(0, 2, 3, 4))
    v = ((true - true.mean(axis=(3, 4), keepdims=True)) ** 2).sum(axis=(0, 2, 3, 4))
    return np.sqrt(d / v)
p = vr(np.broadcast_to(x[:, :1], x.shape), x)
steps = [1, 2, 4, 8, 16, T - 1]
print(split, N, "persistence", {s: round(float(p[s]), 3) for s in steps}, "mean1..T", round(float(p[1:].mean()), 3))
# per-sample persistence at last frame
ps = np.sqrt(((x[:, -1] - x[:, 0]) ** 2).sum(axis=(1, 2, 3)) / ((x[:, -1] - x[:, -1].mean(axis=(-1, -2), keepdims=True)) ** 2).sum(axis=(1, 2, 3)))
print("per-sample persistence at T:", np.round(np.sort(ps), 2))
