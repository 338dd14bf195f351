"""Table II at the smoke scale, as a user runs it: `snakemake results/table2.csv` serves each
round's policy, records rollouts through the client, relabels and retrains, 2 rounds."""

import hashlib
import json

import h5py
import numpy as np
import pandas as pd
from workflow_helpers import copy_repo, run

from rise import paths as P

TASK, VARIANT = "mini_piece_assembly", "rise_lam0.1_eps0.08"  # the test pins lambda 0.1


def episodes(path) -> list[tuple[np.ndarray, dict]]:
    """(actions, attrs) of every demo, in order."""
    with h5py.File(path) as f:
        names = sorted(f["data"], key=lambda n: int(n.split("_")[1]))
        return [(f["data"][n]["actions"][()], dict(f["data"][n].attrs)) for n in names]


def test_snakemake_table2_serves_records_relabels_and_retrains(tmp_path):
    root = copy_repo(tmp_path, scale="smoke", seeds=[0], **{"lambda": 0.1})
    run(["snakemake", "results/table2.csv"], root)
    df = pd.read_csv(root / P.TABLE2)
    assert list(df["round"]) == [0, 1, 2] and (df["rollouts"] == 2).all()
    assert df["mean"].between(0, 1).all() and (df["variant"] == VARIANT).all()
    assert (root / P.TABLE2_PNG).read_bytes()[:4] == b"\x89PNG"
    assert set(json.loads((root / P.TABLE2_JSON).read_text())[TASK]) == {
        "round0",
        "round1",
        "round2",
    }
    for r in range(3):
        recorded = root / P.rollouts(TASK, "lowdim", r, VARIANT, 0)
        policy = root / P.policy_at(TASK, "lowdim", r, VARIANT, 0)
        with h5py.File(recorded) as f:
            info = json.loads(f["data"].attrs["rise_rollout"])
        # each round's rollouts come from that round's policy, served on loopback
        assert info["policy_sha256"] == hashlib.sha256(policy.read_bytes()).hexdigest()
        assert info["round"] == r and info["server"].startswith("ws://127.0.0.1:")
        log = (root / f"logs/rollout/{TASK}_lowdim_{VARIANT}_round{r}_seed0.log").read_text()
        assert "rise serve stopped by SIG" in log  # the served process was stopped
        if r == 2:
            break
        # round r + 1 = round r's data + exactly the recorded episodes, by label
        rec = episodes(recorded)
        before = P.round_datasets(TASK, "lowdim", r, VARIANT, 0)
        after = P.round_datasets(TASK, "lowdim", r + 1, VARIANT, 0)
        for source, keep in (("expert", True), ("play", False)):
            old, new = episodes(root / before[source]), episodes(root / after[source])
            picked = [(a, attrs) for a, attrs in rec if bool(attrs["success"]) is keep]
            assert len(new) == len(old) + len(picked)
            for (a, _), (b, _) in zip(old + picked, new, strict=True):
                np.testing.assert_array_equal(a, b)
            for _, attrs in new[len(old) :]:
                origin = json.loads(attrs["rise_relabel"])
                assert origin["success"] is keep and origin["round"] == r
                assert origin["file"] == P.rollouts(TASK, "lowdim", r, VARIANT, 0)
    assert "Nothing to be done" in run(["snakemake", "results/table2.csv"], root)
    dag = run(["snakemake", "results/table2.csv", "--dag", "dot"], root)
    assert all(rule in dag for rule in ("rollout", "relabel", "train_policy_round", "table2"))
