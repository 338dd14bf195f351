"""Stage `augment`: distance-based augmentation pairs (paper Eq. 8), with faiss.

"Play" states are the rows of every non-expert source (play, partial or suboptimal demos).
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
from rise.data import DatasetError, npz_array, open_npz

EXPERT = "expert"
KINDS = ("", "_gripper", "_episode", "_step")  # a source's arrays in features.npz


def _search(targets: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest targets of each query: (euclidean distances, target positions); -1 = none."""
    if len(targets) == 0 or len(queries) == 0:
        return np.full((len(queries), k), np.inf, np.float32), np.full((len(queries), k), -1)
    index = faiss.IndexFlatL2(targets.shape[1])
    index.add(np.ascontiguousarray(targets, np.float32))
    d2, pos = index.search(np.ascontiguousarray(queries, np.float32), min(k, len(targets)))
    return np.sqrt(np.maximum(d2, 0)), pos


def _merge_nonexpert(arrays: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([arrays[n] for n in names]) if names else np.zeros(0)


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
    distance); sources are coded by their position in `out["sources"]` (0 = expert, then the
    non-expert sources in the given order), indices are rows within a source. Every
    non-expert source is a query ("play") state; play-to-play pairs may cross sources.
    Also returns every query's nearest-expert distance."""
    sources = [EXPERT] + [s for s in feats if s != EXPERT]
    others = sources[1:]
    # All non-expert rows as one pool; episodes made unique across sources.
    sizes = {s: len(feats[s]) for s in others}
    code = _merge_nonexpert(
        {s: np.full(n, i + 1) for i, (s, n) in enumerate(sizes.items())}, others
    )
    row = _merge_nonexpert({s: np.arange(n) for s, n in sizes.items()}, others)
    first_episode = np.cumsum([0] + [int(episode[s].max(initial=-1)) + 1 for s in others])
    unique_episode = {s: episode[s] + first_episode[i] for i, s in enumerate(others)}
    play = {
        "feats": _merge_nonexpert(feats, others).reshape(len(code), -1),
        "grip": _merge_nonexpert(grip, others),
        "episode": _merge_nonexpert(unique_episode, others),
        "step": _merge_nonexpert(step, others),
    }
    q_rows = np.flatnonzero(play["step"] >= skip_play)
    e_rows = np.flatnonzero(step[EXPERT] >= skip_expert)
    cols = {
        c: [] for c in ("state_source", "state_index", "action_source", "action_index", "distance")
    }
    nearest = np.full(len(q_rows), np.inf, np.float32)

    def add(states, action_source, action_index, dist):
        cols["state_source"].append(code[states])
        cols["state_index"].append(row[states])
        cols["action_source"].append(action_source)
        cols["action_index"].append(action_index)
        cols["distance"].append(dist)

    for g in np.union1d(play["grip"], grip[EXPERT]):
        q = q_rows[play["grip"][q_rows] == g]
        t = e_rows[grip[EXPERT][e_rows] == g]
        dist, pos = _search(feats[EXPERT][t], play["feats"][q], k)
        nearest[np.searchsorted(q_rows, q)] = dist[:, 0] if dist.shape[1] else np.inf
        qi, ki = np.nonzero((pos >= 0) & (dist <= epsilon))
        add(q[qi], np.zeros(len(qi), np.int64), t[pos[qi, ki]], dist[qi, ki])
        if play_to_play:
            # search deeper, then drop neighbours from the query's own episode
            dist, pos = _search(play["feats"][q], play["feats"][q], 4 * k + 1)
            ep = play["episode"][q]
            other = (pos >= 0) & (ep[np.maximum(pos, 0)] != ep[:, None])
            ok = other & (dist <= epsilon)
            ok &= np.cumsum(other, axis=1) <= k  # at most k cross-episode neighbours
            qi, ki = np.nonzero(ok)
            neighbour = q[pos[qi, ki]]
            add(q[qi], code[neighbour], row[neighbour], dist[qi, ki])
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
    with open_npz(features, "features") as z:
        info = json.loads(str(npz_array(z, features, "info")))
        get = {
            s: {kind: npz_array(z, features, f"{s}{kind}") for kind in KINDS}
            for s in (str(name) for name in npz_array(z, features, "sources"))
        }
    if EXPERT not in get:
        raise DatasetError(f"{features}: array 'sources' has no {EXPERT!r}: {sorted(get)}")
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
        "pairs_by_state_source": {
            str(name): int((pairs["state_source"] == i).sum())
            for i, name in enumerate(pairs["sources"])
            if i > 0
        },
        "play_states_queried": int(len(nearest)),
        "play_states_with_expert_neighbour": len(
            np.unique(
                np.stack([pairs["state_source"], pairs["state_index"]])[:, to_expert], axis=1
            ).T
        ),
        "nearest_expert_distance_quantiles": {
            str(q): float(np.quantile(finite, q)) if len(finite) else None
            for q in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9)
        },
        "distance_histogram": {
            "edges": [round(float(e), 4) for e in edges],
            "counts": hist.tolist(),
        },
    }
    # what the pairs were made from, checked by every job that reads them (rise.pool)
    made_from = {"rows": np.array([len(get[str(s)][""]) for s in pairs["sources"]]),
                 "epsilon": np.float64(epsilon), "features": json.dumps(info)}  # fmt: skip
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **pairs, **made_from)
    write_json(stats_out, stats)
    return stats
