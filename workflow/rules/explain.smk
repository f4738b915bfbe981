rule perturbation_fills:
    input:
        **data_inputs(["test"]),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
    output:
        table=f"{RESULTS}/explain/{{run}}/fills.csv",
        summary=report(
            f"{RESULTS}/explain/{{run}}/fills.md",
            labels={
                "run": "{run}",
                "method": "perturbation fills",
                "figure": "fills (Markdown)",
            },
            caption="../report/fills.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        figure=report(
            f"{RESULTS}/explain/{{run}}/fills.png",
            labels={
                "run": "{run}",
                "method": "perturbation fills",
                "figure": "fills",
            },
            caption="../report/fills.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        choice=f"{RESULTS}/explain/{{run}}/fills.json",
        provenance=f"{RESULTS}/explain/{{run}}/fills.provenance.json",
    log:
        f"{LOGS}/perturbation_fills/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/perturbation_fills/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        fills=config["explain"]["fills"],
        segmentation=settings_of(config["explain"]["lime"], "n_segments", "compactness"),
        batch_size=config["explain"]["lime"]["batch_size"],
        seed=config["seed"],
        code=code_digest("perturbation_fills.py"),
    script:
        "../scripts/perturbation_fills.py"


rule explain:
    input:
        **data_inputs(["test"]),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        predictions=f"{RESULTS}/runs/{{run}}/predictions.csv",
        cam_model=cam_model_input(),
        fills=measured_fill(config["explain"]["lime"]["hide"]),
    output:
        maps=f"{RESULTS}/explain/{{run}}/maps.npz",
        figure=report(
            f"{RESULTS}/explain/{{run}}/explanations.png",
            labels={
                "run": "{run}",
                "method": "LIME, CAM, Grad-CAM",
                "figure": "explanations",
            },
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
        explain=settings_of(config["explain"], "batch_size", "images_per_class", "lime"),
        seed=config["seed"],
        code=code_digest("explain.py"),
    script:
        "../scripts/explain.py"


rule feature_maps:
    input:
        **data_inputs(["test"]),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
    output:
        maps=f"{RESULTS}/explain/{{run}}/feature_maps.npz",
        figure=report(
            f"{RESULTS}/explain/{{run}}/feature_maps.png",
            labels={
                "run": "{run}",
                "method": "gradient ascent",
                "figure": "feature maps",
            },
            caption="../report/feature_maps.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        invariance=report(
            f"{RESULTS}/explain/{{run}}/invariance.png",
            labels={
                "run": "{run}",
                "method": "gradient ascent",
                "figure": "invariance across images",
            },
            caption="../report/invariance.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        invariance_table=f"{RESULTS}/explain/{{run}}/invariance.csv",
        verdict=f"{RESULTS}/explain/{{run}}/invariance.md",
        gains=f"{RESULTS}/explain/{{run}}/feature_maps.csv",
        channels=f"{RESULTS}/explain/{{run}}/feature_map_channels.csv",
        provenance=f"{RESULTS}/explain/{{run}}/feature_maps.provenance.json",
    log:
        f"{LOGS}/feature_maps/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/feature_maps/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        feature_maps=config["explain"]["feature_maps"],
        seed=config["seed"],
        code=code_digest("feature_maps.py"),
    script:
        "../scripts/feature_maps.py"


rule feature_onset:
    input:
        **data_inputs(["test"]),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        checkpoints=f"{RESULTS}/runs/{{run}}/checkpoints",
    output:
        table=report(
            f"{RESULTS}/explain/{{run}}/onset.csv",
            labels={
                "run": "{run}",
                "method": "gradient ascent",
                "figure": "feature onset (CSV)",
            },
            caption="../report/onset.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        curves=f"{RESULTS}/explain/{{run}}/onset_curves.csv",
        figure=report(
            f"{RESULTS}/explain/{{run}}/onset.png",
            labels={
                "run": "{run}",
                "method": "gradient ascent",
                "figure": "feature onset",
            },
            caption="../report/onset.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        provenance=f"{RESULTS}/explain/{{run}}/onset.provenance.json",
    log:
        f"{LOGS}/feature_onset/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/feature_onset/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        ascent=settings_of(config["explain"]["feature_maps"], "steps", "alpha"),
        onset=settings_of(config["explain"]["onset"], "images", "channels", "threshold"),
        code=code_digest("feature_onset.py"),
    script:
        "../scripts/feature_onset.py"


rule explanation_quality:
    input:
        **data_inputs(["test"], ["images"]),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        maps=f"{RESULTS}/explain/{{run}}/maps.npz",
        cam_model=cam_model_input(),
        fills=measured_fill(
            config["explain"]["quality"]["baseline"], config["explain"]["lime"]["hide"]
        ),
    output:
        table=f"{RESULTS}/explain/{{run}}/quality.csv",
        curves=f"{RESULTS}/explain/{{run}}/quality_curves.csv",
        randomisation=f"{RESULTS}/explain/{{run}}/randomisation.csv",
        summary=report(
            f"{RESULTS}/explain/{{run}}/quality.md",
            labels={
                "run": "{run}",
                "method": "deletion/insertion, randomisation",
                "figure": "explanation quality (Markdown)",
            },
            caption="../report/quality.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        latex=f"{RESULTS}/explain/{{run}}/quality.tex",
        figure=report(
            f"{RESULTS}/explain/{{run}}/quality.png",
            labels={
                "run": "{run}",
                "method": "deletion/insertion, randomisation",
                "figure": "explanation quality",
            },
            caption="../report/quality.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        provenance=f"{RESULTS}/explain/{{run}}/quality.provenance.json",
    log:
        f"{LOGS}/explanation_quality/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/explanation_quality/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        quality=config["explain"]["quality"],
        lime=config["explain"]["lime"],
        batch_size=config["explain"]["batch_size"],
        cam_run=CAM_RUN,
        seed=config["seed"],
        code=code_digest("explanation_quality.py"),
    script:
        "../scripts/explanation_quality.py"


rule lime_checks:
    input:
        **data_inputs(["test"], ["images"]),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        maps=f"{RESULTS}/explain/{{run}}/maps.npz",
        fills=measured_fill(config["explain"]["lime"]["hide"]),
    output:
        table=f"{RESULTS}/explain/{{run}}/lime_checks.csv",
        summary=report(
            f"{RESULTS}/explain/{{run}}/lime_checks.md",
            labels={
                "run": "{run}",
                "method": "LIME stability and agreement",
                "figure": "LIME checks (Markdown)",
            },
            caption="../report/lime_checks.rst",
            category="Explanations",
            subcategory="{run}",
        ),
        provenance=f"{RESULTS}/explain/{{run}}/lime_checks.provenance.json",
    log:
        f"{LOGS}/lime_checks/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/lime_checks/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        checks=config["explain"]["lime_checks"],
        lime=config["explain"]["lime"],
        seed=config["seed"],
        code=code_digest("lime_checks.py"),
    script:
        "../scripts/lime_checks.py"


rule map_shape:
    input:
        **data_inputs(["test"]),
        maps=f"{RESULTS}/explain/{{run}}/maps.npz",
        models=lambda wildcards: expand(
            f"{RESULTS}/runs/{{seed}}/model.keras", seed=seeds_of(wildcards.run)
        ),
    output:
        **{
            suffix: f"{RESULTS}/explain/{{run}}/map_shape.{suffix}"
            for suffix in ("csv", "md", "tex", "html")
        },
        provenance=f"{RESULTS}/explain/{{run}}/map_shape.provenance.json",
    log:
        f"{LOGS}/map_shape/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/map_shape/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        batch_size=config["explain"]["batch_size"],
        seed=config["seed"],
        code=code_digest("map_shape.py"),
    script:
        "../scripts/map_shape.py"
