rule frozen_features:
    input:
        **data_inputs(kinds=["images"]),
    output:
        features=f"{RESULTS}/features/block{{k}}.npy",
        meta=f"{RESULTS}/features/block{{k}}.json",
        provenance=f"{RESULTS}/features/block{{k}}.provenance.json",
    log:
        f"{LOGS}/frozen_features/block{{k}}.log",
    benchmark:
        f"{BENCHMARKS}/frozen_features/block{{k}}.tsv"
    wildcard_constraints:
        k="[1-5]",
    conda:
        "../envs/layerscope.yaml"
    params:
        weights=config["training"]["weights"],
        precision=config["training"]["mixed_precision"],
        code=code_digest("frozen_features.py"),
    script:
        "../scripts/frozen_features.py"


rule train:
    input:
        **data_inputs(),
        start_from=finetune_start,
        features=frozen_features,
    output:
        **tensorboard_output(),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
        history=f"{RESULTS}/runs/{{run}}/history.csv",
        metrics=f"{RESULTS}/runs/{{run}}/metrics.json",
        predictions=f"{RESULTS}/runs/{{run}}/predictions.csv",
        curves=report(
            f"{RESULTS}/runs/{{run}}/training_curves.png",
            labels={
                "run": "{run}",
                "method": "training",
                "figure": "loss and accuracy curves",
            },
            caption="../report/training_curves.rst",
            category="Training",
            subcategory="{run}",
        ),
        weight_changes=f"{RESULTS}/runs/{{run}}/weight_changes.h5",
        checkpoints=directory(f"{RESULTS}/runs/{{run}}/checkpoints"),
        provenance=f"{RESULTS}/runs/{{run}}/provenance.json",
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        training=lambda wildcards: job_settings(wildcards.run, config)["training"],
        seed=lambda wildcards: job_settings(wildcards.run, config)["seed"],
        recording=recording_settings(),
        step_checkpoints=lambda wildcards: wildcards.run in ONSET_RUNS,
        code=code_digest("train.py"),
    script:
        "../scripts/train.py"


rule linear_probe:
    input:
        **data_inputs(kinds=["labels"]),
        features=[f"{RESULTS}/features/block5.npy", f"{RESULTS}/features/block5.json"],
    output:
        metrics=f"{RESULTS}/baselines/linear_probe/metrics.json",
        predictions=f"{RESULTS}/baselines/linear_probe/predictions.csv",
        provenance=f"{RESULTS}/baselines/linear_probe/provenance.json",
    log:
        f"{LOGS}/linear_probe.log",
    benchmark:
        f"{BENCHMARKS}/linear_probe.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        weights=config["training"]["weights"],
        class_weight=config["training"]["class_weight"],
        precision=config["training"]["mixed_precision"],
        seed=config["seed"],
        code=code_digest("linear_probe.py"),
    script:
        "../scripts/linear_probe.py"


rule block_probes:
    input:
        **data_inputs(),
    output:
        table=f"{RESULTS}/baselines/block_probes.csv",
        provenance=f"{RESULTS}/baselines/block_probes.provenance.json",
    log:
        f"{LOGS}/block_probes.log",
    benchmark:
        f"{BENCHMARKS}/block_probes.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        weights=config["training"]["weights"],
        class_weight=config["training"]["class_weight"],
        seed=config["seed"],
        code=code_digest("block_probes.py"),
    script:
        "../scripts/block_probes.py"


rule gradient_norms:
    input:
        **data_inputs(splits=["train"]),
        model=f"{RESULTS}/runs/{{run}}/model.keras",
    output:
        table=f"{RESULTS}/baselines/gradient_norms/{{run}}.csv",
        provenance=f"{RESULTS}/baselines/gradient_norms/{{run}}.provenance.json",
    log:
        f"{LOGS}/gradient_norms/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/gradient_norms/{{run}}.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        batch_size=config["training"]["batch_size"],
        seed=lambda wildcards: job_settings(wildcards.run, config)["seed"],
        code=code_digest("gradient_norms.py"),
    script:
        "../scripts/gradient_norms.py"
