# Ablation and sensitivity figures: each point is a Table I cell at other knob values.
rule figure:
    input:
        lambda w: [f for *_, files in figure_points(w) for f in files],
    output:
        csv=P.figure_csv("{fig}"),
        png=P.figure_png("{fig}"),
    params:
        task=lambda w: figure_points(w)[0][2],
        points=lambda w: " ".join(
            f"--point {shlex.quote(s)} {shlex.quote(x)} " + " ".join(files)
            for s, x, _, files in figure_points(w)
        ),
    log:
        "logs/figures/{fig}.log",
    conda:
        "../envs/rise.yaml"
    shell:
        "rise figure --name {wildcards.fig} --task {params.task} {params.points}"
        " --out-csv {output.csv} --out-png {output.png} > {log} 2>&1"
