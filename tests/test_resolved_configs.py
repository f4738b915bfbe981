"""Every shipped config resolves to what its docs say: the generated table is current, and
the study's configs seed what their claims compare."""

from pathlib import Path

from layerscope.train.resolved import configs_markdown, load_config, resolved_runs

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["config/config.yaml", "config/paper.yaml", "config/smoke.yaml"]


def test_the_docs_table_is_generated_from_the_configs():
    committed = (REPO / "docs" / "configs.md").read_text()
    assert committed == configs_markdown(SHIPPED), (
        "docs/configs.md is stale: python -m layerscope.train.resolved " + " ".join(SHIPPED) + " > docs/configs.md"
    )


def test_paper_config_trains_three_seeds_of_every_cell_with_room_to_stop():
    table = resolved_runs(load_config(REPO / "config/paper.yaml"))
    assert len(table) == 22  # 2 LeNet-5, 3 scratch, 5 depths x 3 optimizers, fine-tuning, 1 GAP
    assert set(table["seeds"]) == {"42, 43, 44"}
    assert (table["epoch cap"] >= 10 * table["patience"]).all()  # at least ten waits of room


def test_default_config_seeds_every_table8_row_and_compared_cell():
    table = resolved_runs(load_config(REPO / "config/config.yaml"))
    three = set(table.index[table["seeds"] == "42, 43, 44"])
    assert three == {
        "lenet5-tanh-sgd",
        "lenet5-relu-adam",
        "vgg16-scratch-momentum",
        "vgg16-freeze3-momentum",
        "vgg16-freeze4-momentum",
        "vgg16-freeze5-sgd",
        "vgg16-freeze5-momentum",
        "vgg16-freeze5-nag",
        "vgg16-finetune",
        "vgg16-gap-freeze4",
    }
    assert set(table.index) - three == {
        "vgg16-freeze3-sgd",
        "vgg16-freeze3-nag",
        "vgg16-freeze4-sgd",
        "vgg16-freeze4-nag",
    }


def test_a_key_left_out_is_inherited_from_the_default_config(tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text("experiment: own\nruns: {seeds: [1, 2]}\n")
    table = resolved_runs(load_config(own))
    assert table.loc["vgg16-freeze3-momentum", "seeds"] == "1, 2"  # runs.seeded inherited
    assert table.loc["vgg16-freeze3-sgd", "seeds"] == "1"
