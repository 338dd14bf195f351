"""`rise serve` and `rise.client`: the policy behind a websocket answers as `evaluate` would."""

import hashlib
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from rise import tasks as T
from rise.cli import main
from rise.client import PolicyClient, pack, unpack
from rise.data import DatasetError, read_dataset
from rise.envs import make_env
from rise.evaluate import Planner
from rise.rollout import evaluate_recorded, rollout
from rise.serve import LOOPBACK, make_server, spawned

ROOT = Path(__file__).resolve().parents[1]
TASK = "mini_square_peg"
SAMPLER = {"num_samples": 4, "scheduler": "ddim", "inference_steps": 3}


@pytest.fixture
def server(cell):
    srv = make_server(policy=str(cell / "p.pt"), critic=str(cell / "c.pt"), port=0, **SAMPLER)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    thread.join(timeout=10)


def url(srv) -> str:
    host, port = srv.socket.getsockname()[:2]
    return f"ws://{host}:{port}"


def history(n: int) -> list[dict]:
    env = make_env(T.get(TASK).env)
    obs = env.reset("eval", np.random.default_rng(0))
    env.close()
    return [obs] * n


def test_arrays_round_trip_without_pickle():
    msg = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [1, "x"], "c": np.int64(3)}
    back = unpack(pack(msg))
    assert back["a"].dtype == np.float32 and back["a"].tolist() == msg["a"].tolist()
    assert back["b"] == [1, "x"] and back["c"] == 3
    with pytest.raises(TypeError, match="dtype object"):
        pack({"x": np.array([object()])})
    evil = pack({"__ndarray__": True, "data": b"", "dtype": "|O", "shape": [0]})
    with pytest.raises(ValueError, match="refusing an array of dtype object"):
        unpack(evil)


def test_served_actions_are_the_evaluation_planners(server, cell):
    """Metadata first; then the same chunk as `evaluate`'s Planner with the same seed."""
    assert server.socket.getsockname()[0] == LOOPBACK  # loopback unless told otherwise
    with PolicyClient(url(server)) as client:
        meta = client.metadata
        assert meta["task"] == TASK and meta["extraction"] and meta["candidates"] == 4
        assert meta["observation_shapes"]["eef_pos"] == [3]
        hist = history(meta["n_obs_steps"])
        actions = client.infer(hist)
    assert actions.shape == (meta["n_action_steps"], meta["action_dim"])
    planner = Planner(str(cell / "p.pt"), str(cell / "c.pt"), seed=0,
                      device=torch.device("cpu"), **SAMPLER)  # fmt: skip
    np.testing.assert_allclose(actions, planner([hist])[0], atol=1e-6)


def test_bad_requests_are_answered_by_name_and_the_connection_stays(server):
    with PolicyClient(url(server)) as client:
        n = client.metadata["n_obs_steps"]
        good = history(n)
        with pytest.raises(RuntimeError, match=f"must list the last {n} observations"):
            client.infer(good[:1] * (n + 1))
        broken = [dict(o) for o in good]
        del broken[-1]["object"]
        with pytest.raises(RuntimeError, match=rf"obs\[{n - 1}\] has no key 'object'"):
            client.infer(broken)
        broken[-1]["object"] = np.zeros(3)
        with pytest.raises(RuntimeError, match=r"has shape \[3\], expected \[7\]"):
            client.infer(broken)
        assert client.infer(good).shape[0] == client.metadata["n_action_steps"]


def test_cli_serves_on_loopback_and_refuses_a_missing_checkpoint(cell, tmp_path):
    """`rise serve` as a user starts it: it prints where it listens; a robot-side client
    gets actions, `rise rollout` records through it and `rise evaluate --recorded` reads the
    file; a checkpoint path that does not exist is named before anything binds."""
    cmd = [sys.executable, "-m", "rise", "serve", "--scale", "smoke", "--port", "0"]
    bad = subprocess.run([*cmd, "--policy", "no/such.pt"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--policy no/such.pt: no such file" in bad.stderr
    checkpoints = ["--policy", str(cell / "p.pt"), "--critic", str(cell / "c.pt")]
    proc = subprocess.Popen([*cmd, *checkpoints], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        line = proc.stdout.readline()
        address = re.search(r"ws://(127\.0\.0\.1):(\d+)", line)
        assert address, line + proc.stderr.read()
        with PolicyClient(address.group(0)) as client:
            actions = client.infer(history(client.metadata["n_obs_steps"]))
            assert actions.shape == (client.metadata["n_action_steps"], 5)
        rise = [sys.executable, "-m", "rise"]
        recorded, metrics = tmp_path / "r.hdf5", tmp_path / "m.json"
        subprocess.run([*rise, "rollout", "--task", TASK, "--server", address.group(0),
                        "--episodes", "1", "--region", "expert", "--out", str(recorded)],
                       cwd=ROOT, check=True, capture_output=True, timeout=300)  # fmt: skip
        subprocess.run([*rise, "evaluate", "--recorded", str(recorded), "--out", str(metrics),
                        "--episodes-out", str(tmp_path / "e.json")],
                       cwd=ROOT, check=True, capture_output=True, timeout=120)  # fmt: skip
        assert json.loads(metrics.read_text())["episodes"] == 1
        unsaid = subprocess.run([*rise, "evaluate", "--out", str(metrics), "--episodes-out", "e"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert unsaid.returncode == 2 and "evaluate needs --policy, --seed" in unsaid.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "request 1:" in proc.stderr.read()  # latency logged per request


def test_rollout_records_robomimic_episodes_that_evaluate_reads(server, cell, tmp_path):
    """A simulated robot acting only through the client: the file is robomimic-layout with
    a success label and chunk boundaries per episode and the served policy's checksum;
    `evaluate --recorded` counts the same successes; unlabelled episodes are refused."""
    out = tmp_path / "rollouts.hdf5"
    info = rollout(task=TASK, server=url(server), episodes=2, region="expert", seed=0,
                   round_=1, out=str(out))  # fmt: skip
    digest = hashlib.sha256((cell / "p.pt").read_bytes()).hexdigest()
    assert info["policy_sha256"] == digest and info["round"] == 1
    keys = ("eef_pos", "eef_quat", "gripper_qpos", "object")
    ds = read_dataset(out, keys)  # the workflow's own reader accepts it
    assert len(ds.lengths) == 2
    with h5py.File(out) as f:
        labels = [bool(f["data"][f"demo_{i}"].attrs["success"]) for i in range(2)]
        starts = f["data/demo_0"].attrs["chunk_starts"]
        with PolicyClient(url(server)) as client:
            n_act = client.metadata["n_action_steps"]
        assert starts[0] == 0 and (np.diff(starts) == n_act).all()
        assert json.loads(f["data"].attrs["rise_rollout"])["region"] == "expert"
    metrics = evaluate_recorded(files=[str(out)], out=str(tmp_path / "m.json"),
                                episodes_out=str(tmp_path / "e.json"))  # fmt: skip
    assert metrics["episodes"] == 2 and metrics["successes"] == sum(labels)
    assert metrics["policy_sha256"] == [digest]
    episodes = json.loads((tmp_path / "e.json").read_text())
    assert [e["success"] for e in episodes] == labels and len(episodes[0]["init_object"]) == 7
    with h5py.File(out, "a") as f:
        del f["data/demo_1"].attrs["success"]
    with pytest.raises(DatasetError, match="demo_1 has no 'success' attribute"):
        evaluate_recorded(files=[str(out)], out=str(tmp_path / "m2.json"),
                          episodes_out=str(tmp_path / "e2.json"))  # fmt: skip
    assert not (tmp_path / "m2.json").exists()


def test_spawned_server_stops_even_when_the_rollout_fails(cell, tmp_path, capfd):
    """`rise rollout --policy` serves the checkpoint from its own `rise serve` process on a
    free loopback port; the process is stopped when the rollout ends, also on an error."""
    args = ["--scale", "smoke", "--policy", str(cell / "p.pt"), "--critic", str(cell / "c.pt")]
    with pytest.raises(RuntimeError, match="the rollout failed"):
        with spawned(args) as address:
            assert address.startswith(f"ws://{LOOPBACK}:")
            with PolicyClient(address) as client:
                assert client.metadata["task"] == TASK
            raise RuntimeError("the rollout failed")
    with pytest.raises(OSError):  # nobody listens there any more
        PolicyClient(address, open_timeout=2)
    assert "rise serve stopped by SIGINT: exit code" in capfd.readouterr().err
    out = tmp_path / "r.hdf5"
    code = main(["rollout", "--scale", "smoke", "--task", TASK, *args[2:], "--episodes", "1",
                 "--region", "expert", "--round", "2", "--out", str(out)])  # fmt: skip
    assert code == 0
    with h5py.File(out) as f:
        assert json.loads(f["data"].attrs["rise_rollout"])["round"] == 2
