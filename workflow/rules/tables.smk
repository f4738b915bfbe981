rule tables:
    input:
        metrics=expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=RUNS + REPLICATES),
        predictions=expand(
            f"{RESULTS}/runs/{{run}}/predictions.csv", run=RUNS + REPLICATES
        ),
        histories=expand(f"{RESULTS}/runs/{{run}}/history.csv", run=RUNS),
        probe=f"{RESULTS}/baselines/linear_probe/metrics.json",
        classes=f"{RESULTS}/data/classes.json",
    output:
        csv=report(
            expand(f"{RESULTS}/tables/{{stem}}.csv", stem=TABLE_STEMS),
            caption="../report/tables.rst",
            category="Tables",
        ),
        md=expand(f"{RESULTS}/tables/{{stem}}.md", stem=TABLE_STEMS),
        tex=expand(f"{RESULTS}/tables/{{stem}}.tex", stem=TABLE_STEMS),
        summary=report(
            f"{RESULTS}/tables/summary.md",
            caption="../report/summary.rst",
            category="Tables",
        ),
        gate=f"{RESULTS}/tables/sanity_gate.json",
        curves=report(
            f"{RESULTS}/figures/validation_curves.png",
            caption="../report/validation_curves.rst",
            category="Training",
        ),
        heatmap=report(
            f"{RESULTS}/figures/freeze_grid_heatmap.png",
            caption="../report/freeze_grid_heatmap.rst",
            category="Tables",
        ),
        provenance=f"{RESULTS}/tables/provenance.json",
    log:
        f"{LOGS}/tables.log",
    conda:
        "../envs/layerscope.yaml"
    params:
        runs=RUNS + REPLICATES,
        transfer_depth=config["runs"]["transfer_depth"],
        image_size=config["data"]["image_size"],
        code=code_digest("tables", "result_figures", "comparisons", "statistics"),
    script:
        "../scripts/tables.py"
