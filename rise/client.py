"""Client of `rise serve`: observation history in, action chunk out, over one websocket.

Small on purpose, to be copied into a robot's control loop: it needs only numpy, msgpack
and websockets (the transport openpi's policy server uses). Messages are msgpack maps;
numpy arrays travel as {"__ndarray__": True, "data", "dtype", "shape"} and are rebuilt
without pickle (object arrays are refused).

    from rise.client import PolicyClient
    with PolicyClient("ws://127.0.0.1:8765") as policy:
        print(policy.metadata)              # observation keys and shapes, chunk lengths
        actions = policy.infer(history)     # history: the last n_obs_steps obs dicts
        for a in actions: robot.step(a)     # n_action_steps actions, the robot's units
"""

from __future__ import annotations

from contextlib import ExitStack

import msgpack
import numpy as np
from websockets.sync.client import connect


def _encode(obj):
    if isinstance(obj, np.ndarray | np.generic):
        arr = np.asarray(obj)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"cannot send an array of dtype {arr.dtype}")
        return {"__ndarray__": True, "data": arr.tobytes(), "dtype": arr.dtype.str,
                "shape": list(arr.shape)}  # fmt: skip
    raise TypeError(f"cannot send a {type(obj).__name__}")


def _decode(obj):
    if obj.get("__ndarray__") is True:
        dtype = np.dtype(obj["dtype"])
        if dtype.kind not in "biufc":
            raise ValueError(f"refusing an array of dtype {dtype}")
        return np.frombuffer(obj["data"], dtype=dtype).reshape(obj["shape"])
    return obj


def pack(obj) -> bytes:
    """msgpack bytes of a message (dicts, lists, numbers, strings, numpy arrays)."""
    return msgpack.packb(obj, default=_encode, use_bin_type=True)


def unpack(data: bytes):
    """The message `pack` wrote; numpy arrays come back as arrays."""
    return msgpack.unpackb(data, object_hook=_decode, raw=False)


class PolicyClient:
    """One persistent connection to a policy server; `metadata` is its first message."""

    def __init__(self, url: str, open_timeout: float = 10.0):
        self._stack = ExitStack()  # connect() as a context manager, on any websockets version
        self._ws = self._stack.enter_context(connect(url, open_timeout=open_timeout, max_size=None))
        self.metadata = unpack(self._ws.recv())

    def infer(self, history: list[dict]) -> np.ndarray:
        """(n_action_steps, action_dim) actions for the last `n_obs_steps` observations
        (oldest first), each a dict with the metadata's observation keys."""
        self._ws.send(pack({"obs": history}))
        reply = unpack(self._ws.recv())
        if "error" in reply:
            raise RuntimeError(f"policy server: {reply['error']}")
        return reply["actions"]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
