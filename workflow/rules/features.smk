rule embed:
    input:
        unpack(task_data),
    output:
        P.features("{task}", "{obs}"),
    params:
        hp=lambda w: hp("embed"),
        data=lambda w, input: data_args(input),
    log:
        "logs/embed/{task}_{obs}.log",
    threads: 2
    resources:
        mem_mb=8000,
        gpu=GPUS,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("embed") + " --task {wildcards.task} --obs {wildcards.obs}"
        " --data {params.data} --out {output}"
        " --threads {threads} > {log} 2>&1"


rule augment:
    input:
        P.features("{task}", "{obs}"),
    output:
        pairs=P.pairs("{task}", "{obs}", "{eps}"),
        stats=P.pair_stats("{task}", "{obs}", "{eps}"),
    params:
        hp=lambda w: hp("augment"),
    log:
        "logs/augment/{task}_{obs}_eps{eps}.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("augment") + " --features {input} --epsilon {wildcards.eps}"
        " --out {output.pairs} --stats {output.stats} > {log} 2>&1"
