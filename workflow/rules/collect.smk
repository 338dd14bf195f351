rule collect:
    input:
        collect_check,
    output:
        P.dataset("{task}", "{obs}", "{source}"),
    params:
        hp=lambda w: hp("collect"),
        seed=config["data_seed"],
    log:
        "logs/collect/{task}_{obs}_{source}.log",
    benchmark:
        "benchmarks/collect/{task}_{obs}_{source}.tsv",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("collect") + " --task {wildcards.task} --obs {wildcards.obs}"
        " --source {wildcards.source} --out {output} > {log} 2>&1"
