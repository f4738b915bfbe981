rule explain:
    input:
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        predictions=f"{RESULTS}/runs/{{run}}/predictions.csv",
        cam_model=cam_model_input(),
        manifest=f"{RESULTS}/data/manifest.csv",
    output:
        maps=f"{RESULTS}/explain/{{run}}/maps.npz",
        figure=report(
            f"{RESULTS}/explain/{{run}}/explanations.png",
            caption="../report/explanations.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        provenance=f"{RESULTS}/explain/{{run}}/provenance.json",
    log:
        f"{LOGS}/explain/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/explain/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        explain=config["explain"],
        seed=config["seed"],
        code=code_digest("explain", "explanations", "explain_figures"),
    script:
        "../scripts/explain.py"


rule feature_maps:
    input:
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        manifest=f"{RESULTS}/data/manifest.csv",
    output:
        maps=f"{RESULTS}/explain/{{run}}/feature_maps.npz",
        figure=report(
            f"{RESULTS}/explain/{{run}}/feature_maps.png",
            caption="../report/feature_maps.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        invariance=report(
            f"{RESULTS}/explain/{{run}}/invariance.png",
            caption="../report/invariance.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        invariance_table=f"{RESULTS}/explain/{{run}}/invariance.csv",
        verdict=f"{RESULTS}/explain/{{run}}/invariance.md",
        gains=f"{RESULTS}/explain/{{run}}/feature_maps.csv",
    log:
        f"{LOGS}/feature_maps/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/feature_maps/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        feature_maps=config["explain"]["feature_maps"],
        code=code_digest("explain", "explanations", "explain_figures"),
    script:
        "../scripts/feature_maps.py"


rule feature_onset:
    input:
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        checkpoints=f"{RESULTS}/runs/{{run}}/checkpoints",
        manifest=f"{RESULTS}/data/manifest.csv",
    output:
        table=report(
            f"{RESULTS}/explain/{{run}}/onset.csv",
            caption="../report/onset.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        curves=f"{RESULTS}/explain/{{run}}/onset_curves.csv",
        figure=report(
            f"{RESULTS}/explain/{{run}}/onset.png",
            caption="../report/onset.rst",
            category="Explanations",
            subcategory="{run}",
        ),
    log:
        f"{LOGS}/feature_onset/{{run}}.log",
    conda:
        "../envs/layerscope.yaml"
    params:
        feature_maps=config["explain"]["feature_maps"],
        onset=config["explain"]["onset"],
        code=code_digest("explain", "onset_study"),
    script:
        "../scripts/feature_onset.py"
