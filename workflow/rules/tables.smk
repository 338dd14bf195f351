rule table1:
    input:
        [f for files in table1_cells().values() for f in files],
    output:
        csv=P.TABLE1,
        md=P.TABLE1_MD,
        json=P.TABLE1_JSON,
    params:
        cells=lambda w: table1_cell_args(),
    log:
        "logs/table1.log",
    conda:
        "../envs/rise.yaml"
    shell:
        "rise table {params.cells} --out {output.csv} --md {output.md} --json {output.json}"
        " > {log} 2>&1"


use rule table1 as table1_robosuite with:
    input:
        [f for files in table1_cells("robosuite_tasks").values() for f in files],
    output:
        csv=P.TABLE1_ROBOSUITE,
        md=P.TABLE1_ROBOSUITE_MD,
        json=P.TABLE1_ROBOSUITE_JSON,
    params:
        cells=lambda w: table1_cell_args("robosuite_tasks"),
    log:
        "logs/table1_robosuite.log",


rule table1_real:
    input:
        [f for have, _ in table1_real().values() for f in have],
    output:
        csv=P.TABLE1_REAL,
        md=P.TABLE1_REAL_MD,
        json=P.TABLE1_REAL_JSON,
    params:
        cells=lambda w: " ".join(
            f"--cell {t} {m} " + " ".join(have)
            for (t, m), (have, _) in table1_real().items()
            if have
        ),
        missing=lambda w: " ".join(
            f"--missing {t} {m} " + " ".join(missing)
            for (t, m), (_, missing) in table1_real().items()
            if missing
        ),
    log:
        "logs/table1_real.log",
    conda:
        "../envs/rise.yaml"
    shell:
        "rise table {params.cells} {params.missing} --out {output.csv} --md {output.md}"
        " --json {output.json} > {log}"
