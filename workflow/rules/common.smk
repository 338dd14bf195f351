# Shared by every rule: validated config, scale sections, artifact paths (rise.paths).
import os
import shlex

import yaml
from snakemake.exceptions import WorkflowError

import rise.config
import rise.figures
from rise import paths as P
from rise import tasks as T
from rise.methods import METHODS, parse_variant, trained_policy, variant

PARAMS = workflow.configfiles[0] if workflow.configfiles else "params.yaml"
try:
    rise.config.typed_overrides(config, workflow.config_settings.config)
    rise.config.validate(config, PARAMS)
except rise.config.ConfigError as exc:
    raise WorkflowError(str(exc)) from None

# The stages read hyperparameters from PARAMS itself; refuse `--config` overrides of them.
with open(PARAMS) as _f:
    _on_disk = yaml.safe_load(_f)
for _key in (*rise.config.SECTIONS, "scales", "data_seed", "device"):
    if config[_key] != _on_disk[_key]:
        raise WorkflowError(
            f"--config override of '{_key}' is not supported: the stages read it from "
            f"{PARAMS}; edit it there (overridable: scale, obs, lambda, epsilon, "
            "lambda_per_task, epsilon_per_task, tasks, methods, seeds)"
        )

SCALE = config["scale"]
OBS = config["obs"]
RISE = f"rise {{}} --params {PARAMS} --scale {SCALE}"  # rule command prefix
# GPUs per torch job (embed, train, evaluate, rollout), which a cluster profile turns into
# Slurm's --gpus: one at `scale: paper` unless `device: cpu`; the smoke and cpu presets run
# on CPUs and ask for none (a GPU request would also hold them in a GPU queue).
GPUS = 1 if SCALE == "paper" and config["device"] != "cpu" else 0


def hp(section):
    return rise.config.section(config, SCALE, section)


def eps_str(task):
    """A task's epsilon as it appears in paths."""
    return str(config["epsilon_per_task"].get(task, config["epsilon"]))


def lam_str(task):
    """A task's lambda as it appears in paths."""
    return str(config["lambda_per_task"].get(task, config["lambda"]))


def get_final_output():
    return [P.TABLE1, P.TABLE1_MD] + [P.coverage_png(t) for t in config["tasks"]]


def table1_cells(tier="tasks"):
    """Table I's cells of the rows listed under `tier` (tasks | robosuite_tasks)."""
    return P.table1_cells(config[tier], config["methods"], config["seeds"], OBS,
                          lam_str, eps_str)


def table1_cell_args(tier="tasks"):
    """`rise table`'s --cell arguments for those rows."""
    return " ".join(f"--cell {t} {m} " + " ".join(files)
                    for (t, m), files in table1_cells(tier).items())


# Input functions: the task (rise.tasks) and a variant tag (rise.methods) decide what a job reads.
def collect_check(w):
    """Only the owner of a dataset collects it (a shared one is collected once)."""
    task = T.get(w.task)
    if task.robot is not None:
        raise WorkflowError(f"{P.dataset(w.task, w.obs, w.source)}: {w.task} is a real-robot "
                            f"task: bring it in with `rise import --task {w.task} --obs {w.obs} "
                            f"--source {w.source} --input FILE`")
    if w.source not in task.sources or T.dataset_owner(w.task, w.source) != w.task:
        raise WorkflowError(f"{P.dataset(w.task, w.obs, w.source)}: task {w.task} does not "
                            f"collect {w.source!r} (its datasets: {task.sources})")
    return []


# Rules that run again in every relabeling round (embed, augment, train_critic,
# train_policy) are defined once per layout: Table I's paths, or round r >= 1 of a lineage
# (task, obs, variant, seed; rise.paths.round_*). A job of a round has a `round` wildcard.
LAYOUTS = {"": None, "_round": ("{round}", "{variant}", "{seed}")}


def in_round(w):
    return "round" in w.keys()


def task_data(w):
    if in_round(w):
        return P.round_datasets(w.task, w.obs, w.round, w.variant, w.seed)
    return P.task_datasets(w.task, w.obs)


def pairs_of(w, eps):
    if in_round(w):
        return P.round_pairs(w.task, w.obs, w.round, w.variant, w.seed, eps)
    return P.pairs(w.task, w.obs, eps)


def pairs_arg(input, knobs):
    """`--pairs FILE --epsilon EPS`: the job checks the file was made with that epsilon."""
    return f"--pairs {input.pairs} --epsilon {knobs['eps']}"


def data_args(input):
    """`--data SOURCE=FILE ...` of the datasets among a rule's named inputs."""
    return " ".join(f"{k}={v}" for k, v in input.items() if k not in ("pairs", "critic"))


def figure_points(w):
    """(series, x, task, metrics files) of figure `w.fig` (rise.figures)."""
    return rise.figures.points(config, w.fig, OBS)


def critic_of(w, knobs):
    """The critic checkpoint a variant with these knobs uses (same epsilon and data amount)."""
    tag = P.critic_tag(knobs.get("eps"), knobs.get("ne"))
    if in_round(w):
        return P.critic_at(w.task, w.obs, w.round, w.variant, w.seed, tag)
    return P.critic(w.task, w.obs, tag, w.seed)


def fraction_arg(knobs):
    return f"--nonexpert-fraction {knobs['ne']}" if "ne" in knobs else ""


def critic_inputs(w):
    inputs = task_data(w)
    knobs = P.parse_critic_tag(w.tag)
    if "eps" in knobs:
        inputs["pairs"] = pairs_of(w, knobs["eps"])
    return inputs


def policy_inputs(w):
    method, knobs = parse_variant(w.variant)
    inputs = task_data(w)
    if not method.nonexpert:
        inputs = {T.EXPERT: inputs[T.EXPERT]}
    if method.augment:
        inputs["pairs"] = pairs_of(w, knobs["eps"])
    if method.critic:
        inputs["critic"] = critic_of(w, knobs)
    return inputs


def policy_hp(w):
    """The hyperparameters a policy job depends on (a change reruns only those jobs)."""
    return [hp(s) for s in parse_variant(w.variant)[0].sections]


def policy_args(w, input):
    method, knobs = parse_variant(w.variant)
    args = [f"--method {method.name}", f"--data {data_args(input)}"]
    if "pairs" in input.keys():
        args.append(pairs_arg(input, knobs))
    if "critic" in input.keys():
        args.append(f"--critic {input.critic}")
    if method.lipschitz:
        args.append(f"--lam {knobs['lam']}")
    args.append(fraction_arg(knobs))
    return " ".join(args)


def eval_inputs(w):
    """The policy to evaluate or serve and, for IDQL / RISE, its critic."""
    method, knobs = parse_variant(w.variant)
    if in_round(w):
        inputs = {"policy": P.policy_at(w.task, w.obs, w.round, w.variant, w.seed)}
    else:
        trained = trained_policy(w.variant, hp("policy"))
        inputs = {"policy": P.policy(w.task, w.obs, trained, w.seed)}
    if method.critic:
        inputs["critic"] = critic_of(w, knobs)
    return inputs


# Table II (relabel.smk): round 0 is relabel.method's Table I cell on relabel.task.
def table2_variant():
    task = config["relabel"]["task"]
    return variant(config["relabel"]["method"], lam_str(task), eps_str(task))


def table2_cells():
    r = config["relabel"]
    return P.table2_cells(r["task"], OBS, table2_variant(), r["rounds"], config["seeds"])


def previous_round(w):
    """Round r - 1's dataset of the source being relabeled, and its recorded rollouts."""
    prev = (w.task, w.obs, int(w.round) - 1, w.variant, w.seed)
    return {"data": P.round_datasets(*prev)[w.source], "rollouts": P.rollouts(*prev)}


def table1_real():
    """(task, method) -> (metrics of the recorded rollouts on disk, recorded files missing)."""
    cells = P.real_cells(OBS, config["methods"], config["seeds"], lam_str, eps_str)
    return {
        key: ([m for r, m in pairs if os.path.exists(r)], [r for r, _ in pairs if not os.path.exists(r)])
        for key, pairs in cells.items()
    }


SIMULATED = "|".join(T.TASKS)  # tasks with an env (T.REAL: a robot records their rollouts)


wildcard_constraints:
    task=r"[a-z0-9_]+",
    obs=r"lowdim|image",
    source=r"[a-z_]+",
    seed=r"\d+",
    round=r"\d+",
    eps=r"[0-9.e+-]+",
    tag=r"(none|eps[0-9.e+-]+)(_ne[0-9.]+)?",
    fig=r"fig[a-z0-9_]+",
    variant=r"[a-z]+(_lam[0-9.e+-]+)?(_eps[0-9.e+-]+)?(_ne[0-9.]+)?",
