"""Which data a results folder holds, so a run of other data never replaces a finished one.

``results/<experiment>/`` belongs to one experiment: its data stage and every job built on
it. A config whose data differ from what a finished run left there (source, path, the
digest of the source's file listing, the ``data`` settings, the seed) would rerun the data
stage and then every job over the old results. The workflow calls :func:`check_experiment`
before it schedules anything (dry runs included) and :func:`record_experiment` when a real
run starts, so the next run can compare with ``experiment.json``.

A folder counts as holding a finished run once its data stage has written
``data/provenance.json``; a folder from before ``experiment.json`` existed is compared by
the source and seed its provenance record names.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from layerscope.core.atomic import write_text
from layerscope.core.errors import LayerscopeError

STAMP = "experiment.json"
OVERRIDE_KEY = "overwrite_results"


def experiment_fingerprint(config: dict, listing: str) -> dict:
    """What defines an experiment's data: source, resolved path, listing digest, ``data`` settings, seed.

    Args:
        config: the validated workflow config.
        listing: :func:`layerscope.data.sources.listing_digest` of the configured source. The
            bundled elpv data's digest is left out: reinstalling the package changes its
            files' modification times, not the data.
    """
    data = config["data"]
    return {
        "source": data["source"],
        "path": str(Path(data["path"]).resolve()) if data.get("path") else None,
        "listing": None if data["source"] == "elpv" else listing,
        "data": dict(data),
        "seed": config["seed"],
    }


@dataclass(frozen=True)
class Held:
    """What a results folder holds from a finished run.

    Attributes:
        fingerprint: the run's :func:`experiment_fingerprint` (only source and seed for a folder
            written before ``experiment.json``).
        images: images its data stage prepared.
        created: when its data stage finished (ISO time).
        trained: training runs finished (``runs/*/metrics.json``).
    """

    fingerprint: dict
    images: int | None
    created: str
    trained: int


def held_run(results: str | os.PathLike) -> Held | None:
    """The finished run ``results`` holds, or None (no data stage finished, or its record unreadable)."""
    results = Path(results)
    try:
        provenance = json.loads((results / "data" / "provenance.json").read_text())
        extra = provenance["extra"]
        fingerprint = {"source": extra["source"], "seed": provenance["seed"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # nothing finished, or a file Snakemake's --touch left empty
    with contextlib.suppress(OSError, ValueError, KeyError):  # no record yet: compare source and seed
        fingerprint = json.loads((results / STAMP).read_text())["fingerprint"]
    trained = len(list(results.glob("runs/*/metrics.json")))
    return Held(fingerprint, extra.get("images"), provenance.get("created", "an unknown time"), trained)


def differences(current: dict, held: dict) -> list[str]:
    """What differs between this config's fingerprint and the held one, for the fields ``held`` records."""
    found = []
    for key in ("source", "path", "seed"):
        if key in held and held[key] != current.get(key):
            found.append(f"{'' if key == 'seed' else 'data.'}{key} {current.get(key)} (holds {held[key]})")
    if "listing" in held and held["listing"] != current.get("listing"):
        found.append("the source's files (added, removed or modified since)")
    if "data" in held:
        for key in sorted((set(held["data"]) | set(current["data"])) - {"source", "path"}):
            if held["data"].get(key) != current["data"].get(key):
                found.append(f"data.{key} {current['data'].get(key)} (holds {held['data'].get(key)})")
    return found


def check_experiment(results: str | os.PathLike, fingerprint: dict, forced: bool = False) -> None:
    """Refuse a run whose data differ from the finished run ``results`` holds.

    Args:
        results: the experiment's folder, ``results/<experiment>``.
        fingerprint: this config's :func:`experiment_fingerprint`.
        forced: replace on purpose (``overwrite_results: true`` or ``--forcerun prepare_data``).

    Raises:
        LayerscopeError: one line naming the folder, what it holds, what differs and the keys to set.
    """
    held = held_run(results)
    if forced or held is None or not (changed := differences(fingerprint, held.fingerprint)):
        return
    images = f"{held.images} images" if held.images is not None else "its images"
    runs = f"{held.trained} trained run{'' if held.trained == 1 else 's'}"
    when = held.created.replace("T", " ").replace("+00:00", " UTC")
    raise LayerscopeError(
        f"{Path(results)}/ holds a finished run of {held.fingerprint['source']} data ({images}, prepared "
        f"{when}, {runs}) and this config differs: {'; '.join(changed)}. Set experiment: <a new name> to keep "
        f"both, or replace it on purpose with --config {OVERRIDE_KEY}=True (or --forcerun prepare_data)"
    )


def record_experiment(results: str | os.PathLike, fingerprint: dict) -> Path:
    """Write ``experiment.json``: the fingerprint of the run starting in ``results`` (atomically)."""
    path = Path(results) / STAMP
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"fingerprint": fingerprint, "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return path


def check_forced(config: dict, forcerun, forceall: bool) -> bool:
    """Whether the user asked to replace the results: the config key, ``--forcerun prepare_data`` or ``--forceall``."""
    if config.get(OVERRIDE_KEY) or forceall:
        return True
    return any(item == "prepare_data" or str(item).endswith("/data/manifest.csv") for item in forcerun or ())
