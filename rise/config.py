"""params.yaml: load safely, validate against the schema, resolve a scale preset.

Snakemake (common.smk) and every CLI stage go through `load`/`validate`, so a bad value
stops the run before any job starts, with the same message naming the key.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SECTIONS = ("collect", "embed", "augment", "critic", "policy", "baselines", "evaluate", "relabel")


class ConfigError(ValueError):
    """A params file that the workflow cannot run with; the message names file and key."""


def schema() -> dict:
    text = resources.files("rise").joinpath("schemas/params.schema.yaml").read_text()
    return yaml.safe_load(text)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(err: jsonschema.ValidationError, path: list) -> str:
    """'key 'a.b': message', naming a missing key itself rather than its parent."""
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        return f"key '{_key([*path, missing[0]])}': missing (required)"
    return f"key '{_key(path)}': {err.message}"


def validate(cfg: Any, source: str = "params.yaml") -> dict:
    """Check `cfg` against the schema, every scale preset merged in, and the task registry."""
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(cfg).__name__}"
        )
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(f"{source}: {_describe(errors[0], list(errors[0].absolute_path))}")
    for name in cfg["scales"]:
        merged = resolve(cfg, name)
        for err in validator.iter_errors(merged):
            path = list(err.absolute_path)
            if path and path[0] in cfg["scales"][name]:  # the scale's override is at fault
                path = ["scales", name, *path]
            raise ConfigError(f"{source}: {_describe(err, path)}")
    from rise.tasks import REAL, TASKS

    for key in ("tasks", "robosuite_tasks"):
        for i, task in enumerate(cfg[key]):
            if task in REAL:
                raise ConfigError(
                    f"{source}: key '{key}.{i}': {task} is a real-robot task; its row is "
                    "results/table1_real.csv, scored from recorded rollouts"
                )
            if task not in TASKS:
                raise ConfigError(
                    f"{source}: key '{key}.{i}': unknown task {task!r}; known: {', '.join(TASKS)}"
                )
    keys = ("ablation_task", "sensitivity_task", "epsilon_task")
    named = [(f"figures.{k}", cfg["figures"][k]) for k in keys]
    for name, preset in cfg["scales"].items():  # a scale may pick its own figure tasks
        picked = preset.get("figures", {})
        named += [(f"scales.{name}.figures.{k}", picked[k]) for k in keys if k in picked]
    named.append(("relabel.task", cfg["relabel"]["task"]))
    for key, task in named:
        if task not in TASKS and not (key == "relabel.task" and task in REAL):
            raise ConfigError(
                f"{source}: key '{key}': unknown task {task!r}; known: {', '.join(TASKS)}"
            )
    for key in ("lambda_per_task", "epsilon_per_task"):
        for task in cfg[key]:
            if task not in TASKS and task not in REAL:
                raise ConfigError(
                    f"{source}: key '{key}.{task}': unknown task; known: {', '.join(TASKS)}"
                )
    return cfg


def load(path: str | Path) -> dict:
    """Read a params file with the safe loader and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate(cfg, str(path))


def _retyped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _retyped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_retyped(v) for v in value]
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def typed_overrides(cfg: dict, overrides: Mapping) -> dict:
    """Re-read the elements of `--config` lists and mappings as params.yaml would.

    Snakemake parses `--config seeds=[0,1]` with YAML's BaseLoader, which keeps every
    element a string (['0', '1']); the schema would then reject it. Only the keys given on
    the command line are touched; scalars there are already typed by Snakemake."""
    for key in overrides:
        if isinstance(cfg.get(key), (dict, list)):
            cfg[key] = _retyped(cfg[key])
    return cfg


def resolve(cfg: dict, scale: str) -> dict:
    """The config with `scales[scale]` merged over the base sections."""
    if scale not in cfg["scales"]:
        raise ConfigError(f"scale {scale!r} is not one of {sorted(cfg['scales'])}")
    out = copy.deepcopy(cfg)
    for section, values in cfg["scales"][scale].items():
        out[section] = {**out[section], **values}
    return out


def section(cfg: dict, scale: str, name: str) -> dict:
    """One section (e.g. 'policy') at the given scale."""
    return resolve(cfg, scale)[name]


def task_epsilon(cfg: dict, task: str) -> float:
    """The augmentation threshold of a task: its override, else the top-level `epsilon`."""
    return float(cfg["epsilon_per_task"].get(task, cfg["epsilon"]))


def task_lambda(cfg: dict, task: str) -> float:
    """The spectral-norm strength of a task: its override, else the top-level `lambda`."""
    return float(cfg["lambda_per_task"].get(task, cfg["lambda"]))
