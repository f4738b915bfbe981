rule tables:
    input:
        metrics=expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=RUNS + REPLICATES),
        predictions=expand(
            f"{RESULTS}/runs/{{run}}/predictions.csv", run=RUNS + REPLICATES
        ),
        histories=expand(f"{RESULTS}/runs/{{run}}/history.csv", run=RUNS),
        train_provenance=expand(
            f"{RESULTS}/runs/{{run}}/provenance.json", run=RUNS + REPLICATES
        ),
        probe=f"{RESULTS}/baselines/linear_probe/metrics.json",
        classes=f"{RESULTS}/data/classes.json",
        # study B's claims (comparison_paper): the feature-map tables
        feature_map_channels=expand(
            f"{RESULTS}/explain/{{run}}/feature_map_channels.csv", run=EXPLAIN_RUNS
        ),
        invariance=expand(f"{RESULTS}/explain/{{run}}/invariance.csv", run=EXPLAIN_RUNS),
        onset=expand(f"{RESULTS}/explain/{{run}}/onset.csv", run=ONSET_RUNS),
        lime_checks=expand(
            f"{RESULTS}/explain/{{run}}/lime_checks.csv", run=EXPLAIN_RUNS
        ),
    output:
        **table_files("html"),
        **table_files("csv"),
        **table_files("md"),
        **table_files("tex"),
        summary=report(
            f"{RESULTS}/tables/summary.md",
            labels={"run": "all runs", "method": "summary", "figure": "download (md)"},
            caption="../report/summary.rst",
            category="Tables",
            subcategory="downloads",
        ),
        gate=f"{RESULTS}/tables/sanity_gate.json",
        readme=f"{RESULTS}/tables/readme_results.md",
        curves=report(
            f"{RESULTS}/figures/validation_curves.png",
            labels={
                "run": "all runs",
                "method": "training",
                "figure": "validation curves",
            },
            caption="../report/validation_curves.rst",
            category="Training",
        ),
        heatmap=report(
            f"{RESULTS}/figures/freeze_grid_heatmap.png",
            labels={"run": "freeze depths", "method": "table 9", "figure": "heat map"},
            caption="../report/freeze_grid_heatmap.rst",
            category="Tables",
            subcategory="tables",
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
        transfer=transfer_run(config["runs"]),
        image_size=config["data"]["image_size"],
        seed=config["seed"],
        code=code_digest("tables.py"),
    script:
        "../scripts/tables.py"


rule freeze_recommendation:
    input:
        quality=expand(f"{RESULTS}/explain/{{run}}/quality.csv", run=QUALITY_RUNS),
        finetune_stores=finetune_stores(),
        metrics=expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=FREEZE_SEEDS),
        predictions=expand(f"{RESULTS}/runs/{{run}}/predictions.csv", run=FREEZE_SEEDS),
        histories=expand(f"{RESULTS}/runs/{{run}}/history.csv", run=FREEZE_SEEDS),
        probes=f"{RESULTS}/baselines/block_probes.csv",
        map_shapes=expand(f"{RESULTS}/explain/{{run}}/map_shape.csv", run=QUALITY_RUNS),
        gradient_norms=gradient_norms_tables(),
    output:
        csv=f"{RESULTS}/tables/freeze_recommendation.csv",
        blocks=multiext(
            f"{RESULTS}/tables/freeze_recommendation_blocks",
            ".csv",
            ".md",
            ".tex",
            ".html",
        ),
        md=report(
            f"{RESULTS}/tables/freeze_recommendation.md",
            labels={
                "run": "freeze depths",
                "method": "freeze_recommendation",
                "figure": "download (md)",
            },
            caption="../report/freeze_recommendation.rst",
            category="Tables",
            subcategory="downloads",
        ),
        tex=f"{RESULTS}/tables/freeze_recommendation.tex",
        html=report(
            f"{RESULTS}/tables/freeze_recommendation.html",
            labels={
                "run": "freeze depths",
                "method": "freeze_recommendation",
                "figure": "table",
            },
            caption="../report/freeze_recommendation.rst",
            category="Tables",
            subcategory="tables",
        ),
        verdict=f"{RESULTS}/tables/freeze_recommendation.json",
        figure=report(
            f"{RESULTS}/figures/freeze_recommendation.png",
            labels={
                "run": "freeze depths",
                "method": "Grad-CAM and weight change",
                "figure": "recommendation",
            },
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
        runs=FREEZE_SEEDS,
        seed=config["seed"],
        code=code_digest("freeze_recommendation.py"),
    script:
        "../scripts/freeze_recommendation.py"


rule landing_page:
    input:
        tables=f"{RESULTS}/tables/summary.md",
        gate=f"{RESULTS}/tables/sanity_gate.json",
        recommendation=landing_recommendation(),
        metrics=expand(f"{RESULTS}/runs/{{run}}/metrics.json", run=RUNS + REPLICATES),
        train_provenance=expand(
            f"{RESULTS}/runs/{{run}}/provenance.json", run=RUNS + REPLICATES
        ),
        figures=landing_figures(),
    output:
        page=report(
            f"{RESULTS}/report/landing.html",
            labels={"run": "all runs", "method": "summary", "figure": "landing page"},
            caption="../report/landing.rst",
            category="Summary",
        ),
    log:
        f"{LOGS}/landing_page.log",
    conda:
        "../envs/layerscope.yaml"
    params:
        code=code_digest("landing_page.py"),
    script:
        "../scripts/landing_page.py"


rule cost_tables:
    input:
        done=all_outputs(),
        train_provenance=expand(
            f"{RESULTS}/runs/{{run}}/provenance.json", run=RUNS + REPLICATES
        ),
    output:
        rules=multiext(f"{RESULTS}/tables/cost_rules", ".csv", ".md", ".tex", ".html"),
        runs=multiext(f"{RESULTS}/tables/cost_runs", ".csv", ".md", ".tex", ".html"),
        provenance=f"{RESULTS}/tables/cost_tables.provenance.json",
    log:
        f"{LOGS}/cost_tables.log",
    conda:
        "../envs/layerscope.yaml"
    params:
        code=code_digest("cost_tables.py"),
    script:
        "../scripts/cost_tables.py"
