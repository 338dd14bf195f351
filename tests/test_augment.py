"""Augmentation pairs obey epsilon, gripper equality, skips and the cross-episode rule."""

import numpy as np

from rise.augment import find_pairs


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle(deg):
    r = np.deg2rad(deg)
    return [np.cos(r), np.sin(r)]


def make():
    # expert: one episode of 4 states on the unit circle; play: two episodes
    feats = {
        "expert": unit([angle(0), angle(10), angle(90), angle(180)]),
        "play": unit([angle(1), angle(2), angle(95), angle(3), angle(179), angle(45)]),
    }
    grip = {"expert": np.array([0, 0, 1, 0]), "play": np.array([0, 1, 1, 0, 0, 0])}
    episode = {"expert": np.array([0, 0, 0, 0]), "play": np.array([0, 0, 0, 1, 1, 1])}
    step = {"expert": np.array([0, 1, 2, 3]), "play": np.array([0, 1, 2, 0, 1, 2])}
    return feats, grip, episode, step


def pairs_set(p):
    return {
        (int(s), int(a), int(src))
        for s, a, src in zip(p["state_index"], p["action_index"], p["action_source"], strict=True)
    }


def test_epsilon_gripper_and_skips():
    feats, grip, episode, step = make()
    eps = 2 * np.sin(np.deg2rad(12) / 2)  # chord of 12 degrees
    p = find_pairs(
        feats,
        grip,
        episode,
        step,
        epsilon=eps,
        k=15,
        play_to_play=False,
        skip_play=0,
        skip_expert=0,
    )
    # play 0 (1 deg, open) -> expert 0 (0 deg) and expert 1 (10 deg), both open
    # play 1 (2 deg, closed): the only closed expert state is at 90 deg: too far
    # play 2 (95 deg, closed) -> expert 2 (90 deg, closed)
    # play 3 (3 deg, open) -> expert 0, 1;  play 4 (179 deg) -> expert 3 (180 deg)
    assert pairs_set(p) == {(0, 0, 0), (0, 1, 0), (2, 2, 0), (3, 0, 0), (3, 1, 0), (4, 3, 0)}
    assert (p["distance"] <= eps + 1e-6).all()
    assert (p["state_source"] == 1).all()
    # skipping the first expert step removes expert 0 as a neighbour
    p = find_pairs(
        feats,
        grip,
        episode,
        step,
        epsilon=eps,
        k=15,
        play_to_play=False,
        skip_play=1,
        skip_expert=1,
    )
    assert pairs_set(p) == {(2, 2, 0), (4, 3, 0)}


def test_k_limits_neighbours():
    feats, grip, episode, step = make()
    p = find_pairs(
        feats, grip, episode, step, epsilon=0.5, k=1, play_to_play=False, skip_play=0, skip_expert=0
    )
    assert pairs_set(p) == {(0, 0, 0), (2, 2, 0), (3, 0, 0), (4, 3, 0)}


def test_play_to_play_only_across_episodes():
    feats, grip, episode, step = make()
    eps = 2 * np.sin(np.deg2rad(12) / 2)
    p = find_pairs(
        feats, grip, episode, step, epsilon=eps, k=15, play_to_play=True, skip_play=0, skip_expert=0
    )
    play = {(s, a) for s, a, src in pairs_set(p) if src == 1}
    # play 0 (ep 0) <-> play 3 (ep 1) are 2 degrees apart and both open; play 1 is closed;
    # play 0 <-> play 1 share an episode (and differ in gripper) so never pair
    assert play == {(0, 3), (3, 0)}
    assert all(episode["play"][s] != episode["play"][a] for s, a in play)


def test_several_nonexpert_sources_are_one_pool_with_their_own_codes():
    """Play split into two sources (e.g. play + partial tipping): the same pairs as one source,
    each state coded by its own source and row; equal episode numbers in different sources
    are different episodes, so play-to-play may pair them."""
    feats, grip, episode, step = make()
    split = {
        "expert": (feats["expert"], grip["expert"], episode["expert"], step["expert"]),
        "play": tuple(a["play"][:3] for a in (feats, grip, episode, step)),
        "tipping": tuple(a["play"][3:] for a in (feats, grip, episode, step)),
    }
    split["tipping"] = (*split["tipping"][:2], np.zeros(3, np.int64), split["tipping"][3])
    args = [{s: v[i] for s, v in split.items()} for i in range(4)]
    eps = 2 * np.sin(np.deg2rad(12) / 2)
    p = find_pairs(*args, epsilon=eps, k=15, play_to_play=True, skip_play=0, skip_expert=0)
    assert list(p["sources"]) == ["expert", "play", "tipping"]
    got = {
        (int(a), int(b), int(c), int(d))
        for a, b, c, d in zip(
            p["state_source"], p["state_index"], p["action_source"], p["action_index"], strict=True
        )
    }
    assert got == {
        (1, 0, 0, 0), (1, 0, 0, 1), (1, 2, 0, 2), (2, 0, 0, 0), (2, 0, 0, 1), (2, 1, 0, 3),
        (1, 0, 2, 0), (2, 0, 1, 0),  # play 0 <-> tipping 0: both "episode 0", not the same one
    }  # fmt: skip
