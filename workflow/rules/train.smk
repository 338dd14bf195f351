rule train_critic:
    input:
        unpack(critic_inputs),
    output:
        ckpt=P.critic("{task}", "{obs}", "{tag}", "{seed}"),
        curve=P.critic_curve("{task}", "{obs}", "{tag}", "{seed}"),
    params:
        hp=lambda w: hp("critic"),
        data=lambda w, input: data_args(input),
        pairs=lambda w, input: f"--pairs {input.pairs}" if "pairs" in input.keys() else "",
        fraction=lambda w: fraction_arg(P.parse_critic_tag(w.tag)),
    log:
        "logs/critic/{task}_{obs}_{tag}_seed{seed}.log",
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


rule train_policy:
    input:
        unpack(policy_inputs),
    output:
        ckpt=P.policy("{task}", "{obs}", "{variant}", "{seed}"),
        curve=P.policy_curve("{task}", "{obs}", "{variant}", "{seed}"),
    params:
        hp=policy_hp,
        args=policy_args,
    log:
        "logs/policy/{task}_{obs}_{variant}_seed{seed}.log",
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
