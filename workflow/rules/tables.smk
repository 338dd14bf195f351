rule table1:
    input:
        [f for files in table1_cells().values() for f in files],
    output:
        csv=P.TABLE1,
        md=P.TABLE1_MD,
        json=P.TABLE1_JSON,
    params:
        cells=lambda w: " ".join(
            f"--cell {t} {m} " + " ".join(files) for (t, m), files in table1_cells().items()
        ),
    log:
        "logs/table1.log",
    conda:
        "../envs/rise.yaml"
    shell:
        "rise table {params.cells} --out {output.csv} --md {output.md} --json {output.json}"
        " > {log} 2>&1"
