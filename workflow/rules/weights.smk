rule render_weight_changes:
    input:
        store=f"{RESULTS}/runs/{{run}}/weight_changes.h5",
    output:
        figure3d=report(
            f"{RESULTS}/runs/{{run}}/figures/weight_changes_3d.png",
            labels={
                "run": "{run}",
                "method": "accumulated",
                "figure": "3D bars (PNG)",
            },
            caption="../report/weight_changes_3d.rst",
            category="Weight changes",
            subcategory="{run}",
        ),
        figure3d_net=report(
            f"{RESULTS}/runs/{{run}}/figures/weight_changes_3d_net.png",
            labels={"run": "{run}", "method": "net", "figure": "3D bars (PNG)"},
            caption="../report/weight_changes_3d_net.rst",
            category="Weight changes",
            subcategory="{run}",
        ),
        heatmap=report(
            f"{RESULTS}/runs/{{run}}/figures/weight_changes_heatmap.png",
            labels={
                "run": "{run}",
                "method": "per period",
                "figure": "layer x reading heat map",
            },
            caption="../report/weight_changes_heatmap.rst",
            category="Weight changes",
            subcategory="{run}",
        ),
        blocks=report(
            f"{RESULTS}/runs/{{run}}/figures/weight_changes_blocks.png",
            labels={"run": "{run}", "method": "per block", "figure": "block lines"},
            caption="../report/weight_changes_blocks.rst",
            category="Weight changes",
            subcategory="{run}",
        ),
        scene=report(
            f"{RESULTS}/runs/{{run}}/figures/weight_changes_3d.html",
            labels={
                "run": "{run}",
                "method": "accumulated and net",
                "figure": "3D scene (turn it)",
            },
            caption="../report/weight_changes_scene.rst",
            category="Weight changes",
            subcategory="{run}",
        ),
        provenance=f"{RESULTS}/runs/{{run}}/figures/provenance.json",
    log:
        f"{LOGS}/render_weight_changes/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/render_weight_changes/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        log_scale=config["weight_changes"]["log_scale"],
        code=code_digest("render_weight_changes.py"),
    script:
        "../scripts/render_weight_changes.py"


rule animate_weight_changes:
    input:
        store=f"{RESULTS}/runs/{{run}}/weight_changes.h5",
    output:
        animation=report(
            f"{RESULTS}/runs/{{run}}/figures/weight_changes.gif",
            labels={"run": "{run}", "method": "accumulated", "figure": "3D animation"},
            caption="../report/weight_changes_3d.rst",
            category="Weight changes",
            subcategory="{run}",
        ),
        provenance=f"{RESULTS}/runs/{{run}}/figures/animation.provenance.json",
    log:
        f"{LOGS}/animate_weight_changes/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/animate_weight_changes/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        log_scale=config["weight_changes"]["log_scale"],
        code=code_digest("animate_weight_changes.py"),
    script:
        "../scripts/animate_weight_changes.py"


rule compare_freeze_depths:
    input:
        stores=expand(
            f"{RESULTS}/runs/{{run}}/weight_changes.h5",
            run=comparison_runs(),
        ),
    output:
        accumulated=report(
            f"{RESULTS}/figures/weight_changes_freeze_comparison.png",
            labels={
                "run": "freeze depths",
                "method": "accumulated",
                "figure": "3D comparison",
            },
            caption="../report/weight_changes_comparison.rst",
            category="Weight changes",
        ),
        net=report(
            f"{RESULTS}/figures/weight_changes_freeze_comparison_net.png",
            labels={
                "run": "freeze depths",
                "method": "net",
                "figure": "3D comparison",
            },
            caption="../report/weight_changes_comparison_net.rst",
            category="Weight changes",
        ),
        provenance=f"{RESULTS}/figures/weight_changes_freeze_comparison.provenance.json",
    log:
        f"{LOGS}/compare_freeze_depths.log",
    benchmark:
        f"{BENCHMARKS}/compare_freeze_depths.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        log_scale=config["weight_changes"]["log_scale"],
        code=code_digest("compare_freeze_depths.py"),
    script:
        "../scripts/compare_freeze_depths.py"
