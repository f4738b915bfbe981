"""config/paper.yaml's code paths at tiny scale through Snakemake: the cache depth the smoke
pipeline test leaves out at the input end (block 1; smoke trains at 3 and 5, the middle and
the whole base), a scratch run, seed replicates, mixed_float16 (computed in float32: the test
hides every GPU) and an animation (few images at 32 px, 1 epoch).

9 jobs (``snakemake -n``; the block-5 cache is the linear probe's), most of them TensorFlow
start-ups. Depths 2 and 4 take the path depth 3 takes (``frozen_extractor`` at another k):
the quick tier's feature tests cover the cut at every k."""

import json

import numpy as np
import pytest
import yaml
from helpers import REPO
from helpers.workflow import CPU_LINE, run_snakemake
from PIL import Image, ImageSequence

pytestmark = pytest.mark.pipeline(minutes=3)  # conftest schedules the longest first

PAPER = yaml.safe_load((REPO / "config/paper.yaml").read_text())
DEPTHS = [1]  # with the smoke pipeline test's 3 and 5: the first, a middle and the last block
RUNS = ["vgg16-scratch-momentum", *(f"vgg16-freeze{k}-momentum" for k in DEPTHS)]
ANIMATED = "vgg16-freeze1-momentum"  # the animation reads the store every run writes alike
SEEDED = "vgg16-freeze1-momentum"  # one code path whichever run they copy: a cached (head-only) one
SEEDS = [42, 43]  # a replicate is a replicate: the third of paper.yaml's seeds takes the same path
# paper.yaml asks for mixed_float16; with every GPU hidden a job computes in float32 (GPU-only policy)
REQUESTED, COMPUTED = "mixed_float16", "float32"


def tiny_paper_config() -> dict:
    """paper.yaml with its code paths kept and its sizes cut: 12 images a class at 32 px, one
    epoch, one optimizer, the depth the smoke test does not train, two seeds for one run
    (paper.yaml seeds every run), no explanation stage (the smoke pipeline test covers it)."""
    config = yaml.safe_load(yaml.safe_dump(PAPER))
    config["experiment"] = "paper-tiny"
    config["data"].update(image_size=[32, 32], max_per_class=12)
    config["runs"].update(
        lenet5=[],
        scratch_optimizers=["momentum"],
        freeze_optimizers=["momentum"],
        finetune_from=None,
        gap_freeze_blocks=[],
        freeze_blocks=DEPTHS,
        seeds=SEEDS,
        seeded=[SEEDED],
    )
    config["training"].update(epochs={"lenet5": 1, "scratch": 1, "freeze": 1, "gap": 1}, batch_size=8)
    config["training"]["finetune"]["epochs"] = 1
    config["weight_changes"]["period"] = 2
    config["explain"].update(runs=[], cam_run=None, onset={**config["explain"]["onset"], "runs": []})
    return config


def paper_targets(results: str) -> list[str]:
    """Every training job and cache (the tables read them all) and one animation; the 3D
    comparison of depths is the smoke pipeline test's."""
    return [f"{results}/tables/summary.md", f"{results}/runs/{ANIMATED}/figures/weight_changes.gif"]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("paper")
    config = tiny_paper_config()
    assert config["data"]["image_size"] != PAPER["data"]["image_size"]  # the paths, not the scale
    assert set(DEPTHS) < set(PAPER["runs"]["freeze_blocks"]) and set(SEEDS) < set(PAPER["runs"]["seeds"])
    assert PAPER["training"]["mixed_precision"] == REQUESTED
    for key in ("mixed_precision", "cache_frozen_features", "early_stopping_patience", "class_weight"):
        assert config["training"][key] == PAPER["training"][key]
    assert config["weight_changes"]["animation"] and config["weight_changes"]["snapshots"] == "final"
    path = workdir / "paper-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    results = "results/paper-tiny"
    run = run_snakemake(workdir, *paper_targets(results), "--configfile", str(path))
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir / "results/paper-tiny"


def test_every_depth_and_seed_trains_under_the_policy_asked_for(paper_run):
    for run in RUNS:
        seeds = ((run, 42), (f"{run}-seed43", 43)) if run == SEEDED else ((run, 42),)
        for replicate, seed in seeds:
            metrics = json.loads((paper_run / "runs" / replicate / "metrics.json").read_text())
            assert (metrics["precision_requested"], metrics["precision"]) == (REQUESTED, COMPUTED)
            assert metrics["epochs_run"] == 1
            assert json.loads((paper_run / "runs" / replicate / "provenance.json").read_text())["seed"] == seed
            log = (paper_run / "logs" / "train" / f"{replicate}.log").read_text()
            assert CPU_LINE in log  # the device the fixture chose, as the job saw it
        if run != SEEDED:
            assert not (paper_run / "runs" / f"{run}-seed43").exists()
        cut = json.loads((paper_run / "runs" / run / "metrics.json").read_text())["cached_frozen_blocks"]
        assert cut == (0 if "scratch" in run else int(run[len("vgg16-freeze")]))


def test_feature_caches_at_their_depths(paper_run):
    for k in DEPTHS:
        meta = json.loads((paper_run / "features" / f"block{k}.json").read_text())
        assert (meta["precision_requested"], meta["precision"], meta["dtype"]) == (REQUESTED, COMPUTED, "float32")
        side, channels = 32 // 2**k, (64, 128, 256, 512, 512)[k - 1]
        cache = np.load(paper_run / "features" / f"block{k}.npy", mmap_mode="r")
        assert cache.shape == (sum(meta["splits"].values()), side, side, channels)
        assert np.isfinite(cache).all()


def test_animation_and_tables(paper_run):
    gif = paper_run / "runs" / ANIMATED / "figures" / "weight_changes.gif"
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    with Image.open(gif) as animation:  # the one animation the tests make: a picture in every frame
        frames = [np.asarray(frame.convert("RGB"), float) for frame in ImageSequence.Iterator(animation)]
    assert frames and all(frame.std() > 5 for frame in frames)
    summary = (paper_run / "tables" / "summary.md").read_text()
    assert ANIMATED in summary
