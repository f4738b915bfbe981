rule linear_probe:
    input:
        manifest=f"{RESULTS}/data/manifest.csv",
        features=f"{RESULTS}/features/block5.npz",
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
        code=code_digest("baselines", "features", "evaluation", "statistics"),
    script:
        "../scripts/linear_probe.py"
