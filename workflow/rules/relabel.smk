# Table II: rounds of serve -> record -> relabel -> retrain on relabel.task. Round 0 is
# relabel.method's Table I cell; each round's policy is served (`rise rollout --policy`
# starts `rise serve` on a free loopback port and stops it), its recorded rollouts are
# scored as a robot's would be, and `rise relabel` writes the next round's expert and
# failures files (rise.relabel); train.smk / features.smk retrain on them.


rule rollout:
    input:
        unpack(eval_inputs),
    output:
        P.rollouts("{task}", "{obs}", "{round}", "{variant}", "{seed}"),
    params:
        hp=lambda w: hp("relabel"),
        sampler=lambda w: [hp("evaluate")["num_samples"], hp("evaluate")["temperature"],
                           hp("policy")["inference_steps"], hp("policy")["inference_scheduler"]],
        critic=lambda w, input: f"--critic {input.critic}" if "critic" in input.keys() else "",
    log:
        "logs/rollout/{task}_{obs}_{variant}_round{round}_seed{seed}.log",
    wildcard_constraints:
        task=SIMULATED,  # a real robot's recorded file is an input, never rebuilt
    threads: 1
    resources:
        mem_mb=4000,
        gpu=GPUS,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("rollout") + " --task {wildcards.task} --policy {input.policy}"
        " {params.critic} --region {params.hp[region]}"
        " --seed {wildcards.seed} --round {wildcards.round} --out {output}"
        " --threads {threads} > {log} 2>&1"


rule evaluate_recorded:
    input:
        P.rollouts("{task}", "{obs}", "{round}", "{variant}", "{seed}"),
    output:
        metrics=P.round_eval("{task}", "{obs}", "{round}", "{variant}", "{seed}", "metrics.json"),
        episodes=P.round_eval("{task}", "{obs}", "{round}", "{variant}", "{seed}", "episodes.json"),
    log:
        "logs/evaluate/{task}_{obs}_{variant}_round{round}_seed{seed}.log",
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("evaluate") + " --recorded {input} --out {output.metrics}"
        " --episodes-out {output.episodes} > {log} 2>&1"


rule relabel:
    input:
        unpack(previous_round),
    output:
        P.round_dataset("{task}", "{obs}", "{round}", "{variant}", "{seed}", "{source}"),
    params:
        prev=lambda w: int(w.round) - 1,
    log:
        "logs/relabel/{task}_{obs}_{variant}_round{round}_seed{seed}_{source}.log",
    wildcard_constraints:
        round=r"[1-9]\d*",
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("relabel") + " --task {wildcards.task} --source {wildcards.source}"
        " --data {input.data} --rollouts {input.rollouts} --round {params.prev}"
        " --out {output} > {log} 2>&1"


rule table2:
    input:
        [f for files in table2_cells().values() for f in files],
    output:
        csv=P.TABLE2,
        md=P.TABLE2_MD,
        json=P.TABLE2_JSON,
        png=P.TABLE2_PNG,
    params:
        task=config["relabel"]["task"],
        variant=table2_variant(),
        rounds=lambda w: " ".join(
            f"--round {r} " + " ".join(files) for r, files in table2_cells().items()
        ),
    log:
        "logs/table2.log",
    conda:
        "../envs/rise.yaml"
    shell:
        "rise table2 --task {params.task} --variant {params.variant} {params.rounds}"
        " --out {output.csv} --md {output.md} --json {output.json} --png {output.png}"
        " > {log} 2>&1"
