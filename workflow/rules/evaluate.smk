rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        metrics=P.eval_metrics("{task}", "{obs}", "{variant}", "{seed}"),
        episodes=P.eval_episodes("{task}", "{obs}", "{variant}", "{seed}"),
        videos=directory(P.eval_videos("{task}", "{obs}", "{variant}", "{seed}")),
    params:
        hp=lambda w: hp("evaluate"),
        sampler=lambda w: [hp("policy")["inference_scheduler"], hp("policy")["inference_steps"]],
        critic=lambda w, input: f"--critic {input.critic}" if "critic" in input.keys() else "",
    log:
        "logs/evaluate/{task}_{obs}_{variant}_seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{task}_{obs}_{variant}_seed{seed}.tsv",
    threads: 1
    resources:
        mem_mb=4000,
        gpu=GPUS,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("evaluate") + " --policy {input.policy} {params.critic}"
        " --seed {wildcards.seed} --out {output.metrics} --episodes-out {output.episodes}"
        " --videos-out {output.videos} --threads {threads} > {log} 2>&1"
