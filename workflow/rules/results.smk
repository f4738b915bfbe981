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
        readme=f"{RESULTS}/tables/readme_results.md",
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
    benchmark:
        f"{BENCHMARKS}/tables.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        runs=RUNS + REPLICATES,
        transfer_depth=config["runs"]["transfer_depth"],
        image_size=config["data"]["image_size"],
        code=code_digest("tables.py"),
    script:
        "../scripts/tables.py"


rule freeze_recommendation:
    input:
        quality=expand(f"{RESULTS}/explain/{{run}}/quality.csv", run=QUALITY_RUNS),
        finetune_store=finetune_store(),
        metrics=expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=FREEZE_RUNS),
        predictions=expand(f"{RESULTS}/runs/{{run}}/predictions.csv", run=FREEZE_RUNS),
        histories=expand(f"{RESULTS}/runs/{{run}}/history.csv", run=FREEZE_RUNS),
    output:
        csv=f"{RESULTS}/tables/freeze_recommendation.csv",
        md=report(
            f"{RESULTS}/tables/freeze_recommendation.md",
            caption="../report/freeze_recommendation.rst",
            category="Tables",
        ),
        tex=f"{RESULTS}/tables/freeze_recommendation.tex",
        verdict=f"{RESULTS}/tables/freeze_recommendation.json",
        figure=report(
            f"{RESULTS}/figures/freeze_recommendation.png",
            caption="../report/freeze_recommendation.rst",
            category="Explanations",
        ),
        provenance=f"{RESULTS}/tables/freeze_recommendation.provenance.json",
    log:
        f"{LOGS}/freeze_recommendation.log",
    benchmark:
        f"{BENCHMARKS}/freeze_recommendation.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        runs=FREEZE_RUNS,
        code=code_digest("freeze_recommendation.py"),
    script:
        "../scripts/freeze_recommendation.py"
