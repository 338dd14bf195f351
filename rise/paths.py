"""Artifact paths: the one place that names every file the workflow writes.

Snakemake's rules (workflow/rules/common.smk) and the DVC pipeline generator
(rise.dvcgen) both build their paths here, so the two tools read and write the same
files and `dvc pull` leaves Snakemake nothing to do. Arguments may be real values or
wildcard/template strings ("{task}", "${obs}").
"""

from __future__ import annotations

from rise import tasks as T
from rise.methods import knob_values


def dataset(task, obs, source) -> str:
    """`lowdim` files hold low-dim keys only; `image` files add the camera frames."""
    return f"data/{task}/{obs}/{source}.hdf5"


def task_datasets(task: str, obs, sources=None) -> dict[str, str]:
    """source -> file of every dataset a task learns from (or of `sources`), expert first;
    a shared dataset is its owner's file."""
    names = T.get(task).sources if sources is None else sources
    return {s: dataset(T.dataset_owner(task, s), obs, s) for s in names}


def features(task, obs) -> str:
    return f"features/{task}/{obs}/features.npz"


def pairs(task, obs, eps) -> str:
    return f"augment/{task}/{obs}/eps{eps}/pairs.npz"


def pair_stats(task, obs, eps) -> str:
    return f"augment/{task}/{obs}/eps{eps}/stats.json"


def critic_tag(eps, ne=None) -> str:
    """Critics differ only by the augmentation they train with ('none' or 'eps<value>') and
    by the fraction of non-expert data (`_ne<value>` when not all of it, Fig 6)."""
    return ("none" if eps is None else f"eps{eps}") + ("" if ne is None else f"_ne{ne}")


def parse_critic_tag(tag: str) -> dict[str, str]:
    """Inverse of `critic_tag`: {"eps": value} and/or {"ne": value}."""
    parts = tag.split("_")
    return knob_values(parts[1:] if parts[0] == "none" else parts)


def critic(task, obs, tag, seed) -> str:
    return f"models/{task}/{obs}/critic-{tag}/seed{seed}/critic.pt"


def critic_curve(task, obs, tag, seed) -> str:
    return f"models/{task}/{obs}/critic-{tag}/seed{seed}/curve.csv"


def policy(task, obs, variant, seed) -> str:
    return f"models/{task}/{obs}/{variant}/seed{seed}/policy.pt"


def policy_curve(task, obs, variant, seed) -> str:
    return f"models/{task}/{obs}/{variant}/seed{seed}/curve.csv"


def eval_dir(task, obs, variant, seed) -> str:
    return f"eval/{task}/{obs}/{variant}/seed{seed}"


def eval_metrics(task, obs, variant, seed) -> str:
    return f"{eval_dir(task, obs, variant, seed)}/metrics.json"


def eval_episodes(task, obs, variant, seed) -> str:
    return f"{eval_dir(task, obs, variant, seed)}/episodes.json"


def eval_videos(task, obs, variant, seed) -> str:
    return f"{eval_dir(task, obs, variant, seed)}/videos"


def coverage_png(task) -> str:
    return f"results/coverage/{task}.png"


def figure_csv(name) -> str:
    return f"results/{name}.csv"


def figure_png(name) -> str:
    return f"results/{name}.png"


TABLE1 = "results/table1.csv"
TABLE1_MD = "results/table1.md"
TABLE1_JSON = "results/table1.json"
TABLE1_ROBOSUITE = "results/table1_robosuite.csv"
TABLE1_ROBOSUITE_MD = "results/table1_robosuite.md"
TABLE1_ROBOSUITE_JSON = "results/table1_robosuite.json"


def table1_cells(tasks, methods, seeds, obs, lam_of, eps_of) -> dict[tuple[str, str], list[str]]:
    """(task, method) -> evaluation metrics of every seed: the inputs of Table I.

    `lam_of(task)` and `eps_of(task)` are the knob values as written in paths (or DVC
    templates).
    """
    from rise.methods import variant

    return {
        (t, m): [eval_metrics(t, obs, variant(m, lam_of(t), eps_of(t)), s) for s in seeds]
        for t in tasks
        for m in methods
    }


# Relabeling rounds (Table II). Round 0 is Table I's cell (the paths above); each later
# round r of a lineage (task, obs, variant, seed) has its own data, features, pairs, critic
# and policy, so the seeds are independent loops. Rollouts and their scores exist per round.
def lineage(round_, variant, seed) -> str:
    return f"round{round_}/{variant}/seed{seed}"


def round_dataset(task, obs, round_, variant, seed, source) -> str:
    return f"data/{task}/{obs}/{lineage(round_, variant, seed)}/{source}.hdf5"


def round_datasets(task, obs, round_, variant, seed) -> dict[str, str]:
    """source -> file of round `round_`: round 0's datasets, with the expert file and the
    failures' file (rise.relabel) replaced by the round's own from round 1 on."""
    files = task_datasets(task, obs)
    if str(round_) != "0":
        for source in (T.EXPERT, T.failures_source(task)):
            files[source] = round_dataset(task, obs, round_, variant, seed, source)
    return files


def round_features(task, obs, round_, variant, seed) -> str:
    return f"features/{task}/{obs}/{lineage(round_, variant, seed)}/features.npz"


def round_pairs(task, obs, round_, variant, seed, eps) -> str:
    return f"augment/{task}/{obs}/{lineage(round_, variant, seed)}/eps{eps}/pairs.npz"


def round_pair_stats(task, obs, round_, variant, seed, eps) -> str:
    return f"augment/{task}/{obs}/{lineage(round_, variant, seed)}/eps{eps}/stats.json"


def _round_model(task, obs, round_, variant, seed, name) -> str:
    return f"models/{task}/{obs}/{variant}/round{round_}/seed{seed}/{name}"


def round_critic(task, obs, round_, variant, seed, tag) -> str:
    return _round_model(task, obs, round_, variant, seed, f"critic-{tag}.pt")


def round_critic_curve(task, obs, round_, variant, seed, tag) -> str:
    return _round_model(task, obs, round_, variant, seed, f"critic-{tag}.csv")


def round_policy(task, obs, round_, variant, seed) -> str:
    return _round_model(task, obs, round_, variant, seed, "policy.pt")


def round_policy_curve(task, obs, round_, variant, seed) -> str:
    return _round_model(task, obs, round_, variant, seed, "curve.csv")


def policy_at(task, obs, round_, variant, seed) -> str:
    """The policy of a round: Table I's checkpoint at round 0."""
    if str(round_) == "0":
        return policy(task, obs, variant, seed)
    return round_policy(task, obs, round_, variant, seed)


def critic_at(task, obs, round_, variant, seed, tag) -> str:
    """The critic a round's policy was trained with: Table I's at round 0."""
    if str(round_) == "0":
        return critic(task, obs, tag, seed)
    return round_critic(task, obs, round_, variant, seed, tag)


def rollouts(task, obs, round_, variant, seed) -> str:
    """A round's recorded rollouts (`rise rollout` through `rise serve`)."""
    return f"rollouts/{task}/{obs}/{variant}/round{round_}/seed{seed}.hdf5"


def round_eval(task, obs, round_, variant, seed, name) -> str:
    """`metrics.json` / `episodes.json` of a round's recorded rollouts."""
    return f"eval/{task}/{obs}/{variant}/round{round_}/seed{seed}/{name}"


TABLE2 = "results/table2.csv"
TABLE2_MD = "results/table2.md"
TABLE2_JSON = "results/table2.json"
TABLE2_PNG = "results/table2.png"


def table2_cells(task, obs, variant, rounds, seeds) -> dict[int, list[str]]:
    """round -> metrics of every seed's recorded rollouts: the inputs of Table II."""
    return {
        r: [round_eval(task, obs, r, variant, s, "metrics.json") for s in seeds]
        for r in range(int(rounds) + 1)
    }


TABLE1_REAL = "results/table1_real.csv"
TABLE1_REAL_MD = "results/table1_real.md"
TABLE1_REAL_JSON = "results/table1_real.json"


def real_cells(obs, methods, seeds, lam_of, eps_of) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(task, method) -> (recorded rollouts, their metrics) of every seed, for the real
    tier's rows: a robot records round 0's policy of the cell as `rise rollout` would."""
    from rise.methods import variant

    cells = {}
    for t in T.REAL:
        for m in methods:
            v = variant(m, lam_of(t), eps_of(t))
            cells[(t, m)] = [
                (rollouts(t, obs, 0, v, s), round_eval(t, obs, 0, v, s, "metrics.json"))
                for s in seeds
            ]
    return cells
