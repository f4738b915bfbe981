"""3D figures (accumulated and net change), the 3D scene to turn and 2D companions of one run's weight changes."""

from layerscope.core.scripting import run_job, write_job_provenance


def main(smk):
    from layerscope.core.errors import LayerscopeError
    from layerscope.weights.plots import plot_block_lines, plot_period_heatmap
    from layerscope.weights.render3d import render_run
    from layerscope.weights.scene3d import write_scene
    from layerscope.weights.store import WeightChangeStore

    store = WeightChangeStore(smk.input.store)
    if store.run_id != smk.wildcards.run:
        raise LayerscopeError(
            f"{smk.input.store} holds the weight changes of run '{store.run_id}', "
            f"not '{smk.wildcards.run}' (a file copied from another run?)"
        )
    render_run(store, smk.output.figure3d, log_scale=smk.params.log_scale, mode="accumulated")
    render_run(store, smk.output.figure3d_net, log_scale=smk.params.log_scale, mode="net")
    write_scene(store, smk.output.scene, log_scale=smk.params.log_scale)
    plot_period_heatmap(store, smk.output.heatmap)
    plot_block_lines(store, smk.output.blocks)
    write_job_provenance(smk, extra={"run": smk.wildcards.run})


run_job(snakemake, main)  # noqa: F821 (injected by Snakemake)
