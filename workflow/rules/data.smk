rule prepare_data:
    input:
        data_source_input,
    output:
        manifest=f"{RESULTS}/data/manifest.csv",
        classes=f"{RESULTS}/data/classes.json",
        arrays=expand(
            f"{RESULTS}/data/{{split}}_{{kind}}.npy",
            split=SPLITS,
            kind=["images", "labels"],
        ),
        counts=report(
            f"{RESULTS}/data/class_counts.csv",
            caption="../report/class_counts.rst",
            category="Data",
            labels={
                "run": "all runs",
                "method": "data split",
                "figure": "class counts (CSV)",
            },
        ),
        counts_png=report(
            f"{RESULTS}/data/class_counts.png",
            caption="../report/class_counts.rst",
            category="Data",
            labels={
                "run": "all runs",
                "method": "data split",
                "figure": "class counts (chart)",
            },
        ),
        provenance=f"{RESULTS}/data/provenance.json",
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data.tsv"
    conda:
        "../envs/layerscope.yaml"
    params:
        data=config["data"],
        listing=data_listing_digest(),
        seed=config["seed"],
        code=code_digest("prepare_data.py"),
    script:
        "../scripts/prepare_data.py"
