# One rule per layout (common.smk LAYOUTS): Table I's paths, and each relabeling round's.
for suffix, lineage in LAYOUTS.items():
    at = "" if lineage is None else "_round{round}_{variant}"

    rule:
        name:
            f"train_critic{suffix}"
        input:
            unpack(critic_inputs),
        output:
            ckpt=(
                P.critic("{task}", "{obs}", "{tag}", "{seed}")
                if lineage is None
                else P.round_critic("{task}", "{obs}", *lineage, "{tag}")
            ),
            curve=(
                P.critic_curve("{task}", "{obs}", "{tag}", "{seed}")
                if lineage is None
                else P.round_critic_curve("{task}", "{obs}", *lineage, "{tag}")
            ),
        params:
            hp=lambda w: hp("critic"),
            data=lambda w, input: data_args(input),
            pairs=lambda w, input: (
                pairs_arg(input, P.parse_critic_tag(w.tag)) if "pairs" in input.keys() else ""
            ),
            fraction=lambda w: fraction_arg(P.parse_critic_tag(w.tag)),
        log:
            f"logs/critic/{{task}}_{{obs}}_{{tag}}_seed{{seed}}{at}.log",
        benchmark:
            f"benchmarks/critic/{{task}}_{{obs}}_{{tag}}_seed{{seed}}{at}.tsv",
        threads: 1
        resources:
            mem_mb=6000,
            gpu=GPUS,
        conda:
            "../envs/rise.yaml"
        shell:
            RISE.format("train-critic") + " --task {wildcards.task} --obs {wildcards.obs}"
            " --data {params.data} {params.pairs} {params.fraction} --seed {wildcards.seed}"
            " --out {output.ckpt} --curve {output.curve} --threads {threads} > {log} 2>&1"

    rule:
        name:
            f"train_policy{suffix}"
        input:
            unpack(policy_inputs),
        output:
            ckpt=(
                P.policy("{task}", "{obs}", "{variant}", "{seed}")
                if lineage is None
                else P.round_policy("{task}", "{obs}", *lineage)
            ),
            curve=(
                P.policy_curve("{task}", "{obs}", "{variant}", "{seed}")
                if lineage is None
                else P.round_policy_curve("{task}", "{obs}", *lineage)
            ),
        params:
            hp=policy_hp,
            args=policy_args,
        log:
            f"logs/policy/{{task}}_{{obs}}_{{variant}}_seed{{seed}}{at}.log",
        benchmark:
            f"benchmarks/policy/{{task}}_{{obs}}_{{variant}}_seed{{seed}}{at}.tsv",
        threads: 1
        resources:
            mem_mb=6000,
            gpu=GPUS,
        conda:
            "../envs/rise.yaml"
        shell:
            RISE.format("train-policy") + " --task {wildcards.task} --obs {wildcards.obs}"
            " {params.args} --seed {wildcards.seed} --out {output.ckpt} --curve {output.curve}"
            " --threads {threads} > {log} 2>&1"
