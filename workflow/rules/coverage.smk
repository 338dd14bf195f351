rule coverage:
    input:
        unpack(lambda w: P.task_datasets(w.task, OBS)),
    output:
        P.coverage_png("{task}"),
    params:
        data=lambda w, input: data_args(input),
        eval_starts=lambda w: [config["seeds"], hp("evaluate")["episodes"]],
    log:
        "logs/coverage/{task}.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/rise.yaml"
    shell:
        RISE.format("coverage") + f" --task {{wildcards.task}} --obs {OBS}"
        " --data {params.data} --out {output} > {log} 2>&1"
