"""Stage `augment`: distance-based augmentation pairs (paper Eq. 8), with faiss.

For every play state (after the first `skip_play` steps of its episode), its `k` nearest
expert states (after the first `skip_expert` steps) that lie within `epsilon` on the unit
sphere AND share its gripper state become a pair: the play state's observation with the
expert state's action chunk, reward and done. With `play_to_play`, the same between play
states of *different* episodes. Computed once per (task, features, epsilon) and shared by
every method and seed that uses it. Exact search (IndexFlatL2) over the given features.
"""

from __future__ import annotations

import json

import faiss
import numpy as np

from rise.atomic import atomic_path, write_json

EXPERT, PLAY = "expert", "play"


def _search(targets: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest targets of each query: (euclidean distances, target positions); -1 = none."""
    if len(targets) == 0 or len(queries) == 0:
        return np.full((len(queries), k), np.inf, np.float32), np.full((len(queries), k), -1)
    index = faiss.IndexFlatL2(targets.shape[1])
    index.add(np.ascontiguousarray(targets, np.float32))
    d2, pos = index.search(np.ascontiguousarray(queries, np.float32), min(k, len(targets)))
    return np.sqrt(np.maximum(d2, 0)), pos


def find_pairs(
    feats: dict[str, np.ndarray],
    grip: dict[str, np.ndarray],
    episode: dict[str, np.ndarray],
    step: dict[str, np.ndarray],
    *,
    epsilon: float,
    k: int,
    play_to_play: bool,
    skip_play: int,
    skip_expert: int,
) -> dict:
    """Pairs as parallel arrays (state_source, state_index, action_source, action_index,
    distance), sources coded 0 = expert, 1 = play; plus every query's nearest-expert distance."""
    sources = [EXPERT, PLAY]
    q_rows = np.flatnonzero(step[PLAY] >= skip_play)
    e_rows = np.flatnonzero(step[EXPERT] >= skip_expert)
    cols = {
        c: [] for c in ("state_source", "state_index", "action_source", "action_index", "distance")
    }
    nearest = np.full(len(q_rows), np.inf, np.float32)

    def add(states, actions, dist, action_source):
        cols["state_source"].append(np.full(len(states), sources.index(PLAY)))
        cols["state_index"].append(states)
        cols["action_source"].append(np.full(len(states), sources.index(action_source)))
        cols["action_index"].append(actions)
        cols["distance"].append(dist)

    for g in np.union1d(grip[PLAY], grip[EXPERT]):
        q = q_rows[grip[PLAY][q_rows] == g]
        t = e_rows[grip[EXPERT][e_rows] == g]
        dist, pos = _search(feats[EXPERT][t], feats[PLAY][q], k)
        nearest[np.searchsorted(q_rows, q)] = dist[:, 0] if dist.shape[1] else np.inf
        ok = (pos >= 0) & (dist <= epsilon)
        qi, ki = np.nonzero(ok)
        add(q[qi], t[pos[qi, ki]], dist[qi, ki], EXPERT)
        if play_to_play:
            # search deeper, then drop neighbours from the query's own episode
            dist, pos = _search(feats[PLAY][q], feats[PLAY][q], 4 * k + 1)
            other = (pos >= 0) & (episode[PLAY][q][np.maximum(pos, 0)] != episode[PLAY][q][:, None])
            ok = other & (dist <= epsilon)
            ok &= np.cumsum(other, axis=1) <= k  # at most k cross-episode neighbours
            qi, ki = np.nonzero(ok)
            add(q[qi], q[pos[qi, ki]], dist[qi, ki], PLAY)
    out = {c: (np.concatenate(v) if v else np.zeros(0)) for c, v in cols.items()}
    for c in ("state_source", "state_index", "action_source", "action_index"):
        out[c] = out[c].astype(np.int64)
    out["distance"] = out["distance"].astype(np.float32)
    out["sources"] = np.array(sources)
    out["nearest_expert"] = nearest
    return out


def augment(
    *,
    features: str,
    epsilon: float,
    k: int,
    play_to_play: bool,
    skip_play: int,
    skip_expert: int,
    out: str,
    stats_out: str,
) -> dict:
    with np.load(features) as z:
        info = json.loads(str(z["info"]))
        get = {
            s: {kind: z[f"{s}{kind}"] for kind in ("", "_gripper", "_episode", "_step")}
            for s in (EXPERT, PLAY)
        }
    pairs = find_pairs(
        {s: v[""] for s, v in get.items()},
        {s: v["_gripper"] for s, v in get.items()},
        {s: v["_episode"] for s, v in get.items()},
        {s: v["_step"] for s, v in get.items()},
        epsilon=epsilon,
        k=k,
        play_to_play=play_to_play,
        skip_play=skip_play,
        skip_expert=skip_expert,
    )
    nearest = pairs.pop("nearest_expert")
    to_expert = pairs["action_source"] == 0
    finite = nearest[np.isfinite(nearest)]
    hist, edges = np.histogram(pairs["distance"], bins=20, range=(0.0, max(epsilon, 1e-6)))
    stats = {
        "epsilon": epsilon,
        "k": k,
        "play_to_play": play_to_play,
        "features": info,
        "pairs": int(len(pairs["distance"])),
        "pairs_play_to_expert": int(to_expert.sum()),
        "pairs_play_to_play": int((~to_expert).sum()),
        "play_states_queried": int(len(nearest)),
        "play_states_with_expert_neighbour": int(len(np.unique(pairs["state_index"][to_expert]))),
        "nearest_expert_distance_quantiles": {
            str(q): float(np.quantile(finite, q)) if len(finite) else None
            for q in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9)
        },
        "distance_histogram": {
            "edges": [round(float(e), 4) for e in edges],
            "counts": hist.tolist(),
        },
    }
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **pairs)
    write_json(stats_out, stats)
    return stats
