# One rule per layout (common.smk LAYOUTS): Table I's paths, and each relabeling round's.
for suffix, lineage in LAYOUTS.items():
    at = "" if lineage is None else "_round{round}_{variant}_seed{seed}"

    rule:
        name:
            f"embed{suffix}"
        input:
            unpack(task_data),
        output:
            (
                P.features("{task}", "{obs}")
                if lineage is None
                else P.round_features("{task}", "{obs}", *lineage)
            ),
        params:
            hp=lambda w: hp("embed"),
            data=lambda w, input: data_args(input),
        log:
            f"logs/embed/{{task}}_{{obs}}{at}.log",
        benchmark:
            f"benchmarks/embed/{{task}}_{{obs}}{at}.tsv",
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

    rule:
        name:
            f"augment{suffix}"
        input:
            (
                P.features("{task}", "{obs}")
                if lineage is None
                else P.round_features("{task}", "{obs}", *lineage)
            ),
        output:
            pairs=(
                P.pairs("{task}", "{obs}", "{eps}")
                if lineage is None
                else P.round_pairs("{task}", "{obs}", *lineage, "{eps}")
            ),
            stats=(
                P.pair_stats("{task}", "{obs}", "{eps}")
                if lineage is None
                else P.round_pair_stats("{task}", "{obs}", *lineage, "{eps}")
            ),
        params:
            hp=lambda w: hp("augment"),
        log:
            f"logs/augment/{{task}}_{{obs}}_eps{{eps}}{at}.log",
        benchmark:
            f"benchmarks/augment/{{task}}_{{obs}}_eps{{eps}}{at}.tsv",
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            "../envs/rise.yaml"
        shell:
            RISE.format("augment") + " --features {input} --epsilon {wildcards.eps}"
            " --out {output.pairs} --stats {output.stats} > {log} 2>&1"
