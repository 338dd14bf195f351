def critic_inputs(w):
    inputs = {
        "expert": P.dataset(w.task, w.obs, "expert"),
        "play": P.dataset(w.task, w.obs, "play"),
    }
    if w.tag != "none":
        inputs["pairs"] = P.pairs(w.task, w.obs, w.tag[len("eps"):])
    return inputs


def policy_inputs(w):
    method, knobs = parse_variant(w.variant)
    inputs = {"expert": P.dataset(w.task, w.obs, "expert")}
    if method.nonexpert:
        inputs["play"] = P.dataset(w.task, w.obs, "play")
    if method.augment:
        inputs["pairs"] = P.pairs(w.task, w.obs, knobs["eps"])
    if method.critic:
        inputs["critic"] = P.critic(w.task, w.obs, P.critic_tag(knobs.get("eps")), w.seed)
    return inputs


def policy_args(w, input):
    method, knobs = parse_variant(w.variant)
    args = [f"--method {method.name}"]
    args += [f"--{key} {path}" for key, path in input.items()]
    if method.lipschitz:
        args.append(f"--lam {knobs['lam']}")
    return " ".join(args)


rule train_critic:
    input:
        unpack(critic_inputs),
    output:
        ckpt=P.critic("{task}", "{obs}", "{tag}", "{seed}"),
        curve=P.critic_curve("{task}", "{obs}", "{tag}", "{seed}"),
    params:
        hp=lambda w: hp("critic"),
        pairs=lambda w, input: f"--pairs {input.pairs}" if "pairs" in input.keys() else "",
    log:
        "logs/critic/{task}_{obs}_{tag}_seed{seed}.log",
    threads: 2
    resources:
        mem_mb=6000,
        gpu=0,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("train-critic") + " --task {wildcards.task} --obs {wildcards.obs}"
        " --expert {input.expert} --play {input.play} {params.pairs} --seed {wildcards.seed}"
        " --out {output.ckpt} --curve {output.curve} --threads {threads} > {log} 2>&1"


rule train_policy:
    input:
        unpack(policy_inputs),
    output:
        ckpt=P.policy("{task}", "{obs}", "{variant}", "{seed}"),
        curve=P.policy_curve("{task}", "{obs}", "{variant}", "{seed}"),
    params:
        hp=lambda w: hp("policy"),
        args=policy_args,
    log:
        "logs/policy/{task}_{obs}_{variant}_seed{seed}.log",
    threads: 2
    resources:
        mem_mb=6000,
        gpu=0,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("train-policy") + " --task {wildcards.task} --obs {wildcards.obs}"
        " {params.args} --seed {wildcards.seed} --out {output.ckpt} --curve {output.curve}"
        " --threads {threads} > {log} 2>&1"
