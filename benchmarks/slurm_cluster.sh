#!/usr/bin/env bash
# A real SLURM run of the pipeline on a one-node cluster on this machine (make test-slurm).
#
# Installs Debian's slurm-wlm and munge when missing (needs root and apt), starts munged,
# slurmctld and slurmd on localhost (one node, its CPUs, a count-only Gres=gpu:1, no
# accounting database), and then:
#   1. runs the smoke config locally (the reference) and through
#      --workflow-profile workflow/profiles/slurm, and checks that every job of the SLURM
#      run was a SLURM job that completed (its job id in .snakemake/slurm_logs and
#      COMPLETED in squeue, which keeps finished jobs for MinJobAge) and that its
#      predictions, metrics, histories, class counts and tables equal the local run's
#      (benchmarks/same_results.py: timings left out by the rule training writes them by);
#   2. trains a LeNet-5 run through SLURM, cancels its job with scancel mid-training,
#      reruns, and checks that the rerun resumed from the last finished epoch and ends
#      with the metrics of an uninterrupted local run.
# Every daemon it started is stopped on exit (trap), and the /etc/slurm/slurm.conf and gres.conf
# it wrote are removed (it refuses to run where a slurm.conf exists). .ci/run runs it with
# IF_POSSIBLE=1: where the scheduler cannot be installed it prints why and passes. It takes
# about 8 minutes on two idle cores.
#
# One-node overrides of workflow/profiles/slurm (a site's profile asks for more than one
# small machine has): --slurm-no-account (no accounting database to take an account
# from), --slurm-status-command squeue (sacct needs accounting), the partition of this
# cluster, mem_mb/cpus_per_task/threads within the node, and runtime in minutes that
# MaxTime allows. The training jobs still ask for gpu=1, which the count-only gres grants.
#
# Environment: WORK (scratch folder, default a new temp folder), KEEP=1 keeps it, PARTS
# ("smoke scancel" by default) the checks to run.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
WORK=${WORK:-$(mktemp -d /tmp/layerscope-slurm.XXXXXX)}
CLUSTER=$WORK/cluster
# The jobs' own srun finds the cluster through /etc/slurm/slurm.conf (the SLURM plugin does not
# pass SLURM_* variables into a job), so the configuration goes there while the cluster runs.
CONF_DIR=/etc/slurm
NODE=$(hostname -s)
CPUS=$(nproc)
PARTITION=layerscope
STARTED=()

say() { printf '[slurm_cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

stop_daemons() {
    local pid
    for pid in "${STARTED[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    done
    [ ${#STARTED[@]} -gt 0 ] && say "stopped the daemons it started (pids ${STARTED[*]})"
    [ "${WROTE_CONF:-0}" = 1 ] && rm -f "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM  # so that EXIT runs on Ctrl-C or kill too

# --- install -----------------------------------------------------------------------------
# Where the scheduler cannot be had (not root, no apt, no package source, daemons that do not
# come up), IF_POSSIBLE=1 (what .ci/run sets) says why and passes; a cluster that comes up and
# then fails a check fails.
cannot() {
    [ "${IF_POSSIBLE:-0}" = 1 ] || fail "$*"
    say "SKIPPED: $* (the SLURM check needs it; run make test-slurm where it can)"
    exit 0
}
[ "$(id -u)" = 0 ] || cannot "not root: it installs slurm-wlm and munge and writes $CONF_DIR/slurm.conf"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || cannot "slurm-wlm and munge are not installed and there is no apt-get"
    say "installing slurm-wlm and munge (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >"$WORK/apt.log" 2>&1 ||
        { apt-get update >>"$WORK/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >>"$WORK/apt.log" 2>&1; } ||
        cannot "apt-get could not install slurm-wlm and munge: $(tail -1 "$WORK/apt.log")"
fi
say "$(slurmctld -V), $(munged -V 2>&1 | head -1)"

# --- start a one-node cluster --------------------------------------------------------------
[ -e "$CONF_DIR/slurm.conf" ] && cannot "$CONF_DIR/slurm.conf exists: this machine has a SLURM set-up of its own"
mkdir -p "$CLUSTER"/{state,spool,log} /run/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key
if ! munge -n </dev/null >/dev/null 2>&1; then
    munged --force --foreground >"$CLUSTER/log/munged.out" 2>&1 &
    STARTED+=($!)
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.2; done
fi
munge -n </dev/null | unmunge >/dev/null || cannot "munged does not answer on this machine"

MEMORY_MB=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))  # half of it for jobs
WROTE_CONF=1
mkdir -p "$CONF_DIR"
cat >"$CONF_DIR/slurm.conf" <<EOF
ClusterName=layerscope
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=6917
SlurmdPort=6918
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$CLUSTER/state
SlurmdSpoolDir=$CLUSTER/spool
SlurmctldPidFile=$CLUSTER/slurmctld.pid
SlurmdPidFile=$CLUSTER/slurmd.pid
SlurmctldLogFile=$CLUSTER/log/slurmctld.log
SlurmdLogFile=$CLUSTER/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY_MB Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
# One GPU by count: gres/gpu ignores a file-less GPU, so it names /dev/null (no device; with
# task/none nothing is constrained, the count is what the scheduler books).
echo "NodeName=$NODE Name=gpu Count=1 File=/dev/null" >"$CONF_DIR/gres.conf"
export SLURM_CONF=$CONF_DIR/slurm.conf

slurmctld -D -f "$SLURM_CONF" >"$CLUSTER/log/slurmctld.out" 2>&1 &
STARTED+=($!)
slurmd -D -f "$SLURM_CONF" >"$CLUSTER/log/slurmd.out" 2>&1 &
STARTED+=($!)
for _ in $(seq 100); do
    sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^idle' && break
    sleep 0.3
done
sinfo -h -N -o '%T' | grep -qE '^idle' || cannot "a one-node cluster does not come up here: node $NODE $(sinfo -h -N -o '%T' 2>&1)"
say "cluster up: $(sinfo -h -N -o '%N %c CPUs %m MB %G %T')"

# --- run the workflow through SLURM --------------------------------------------------------
SLURM_ARGS=(
    --workflow-profile "$REPO/workflow/profiles/slurm"
    --slurm-no-account --slurm-status-command squeue --slurm-keep-successful-logs
    --slurm-init-seconds-before-status-checks 5
    --default-resources "slurm_partition=$PARTITION" mem_mb=1500 cpus_per_task=1 runtime=30
    --set-resources train:gpu=1 train:mem_mb=3000 "train:cpus_per_task=$CPUS"
    frozen_features:gpu=1 frozen_features:mem_mb=3000 "frozen_features:cpus_per_task=$CPUS"
    --set-threads "train=$CPUS" "frozen_features=$CPUS"
    --jobs 4 --latency-wait 10
)
smk() { (cd "$REPO" && "$PY" -m snakemake "$@"); }

PARTS=${PARTS:-smoke scancel}
if [[ " $PARTS " == *" smoke "* ]]; then
say "local smoke run (the reference)"
started=$SECONDS
smk --cores "$CPUS" --directory "$WORK/local" --configfile config/smoke.yaml --quiet rules >"$WORK/local.log" 2>&1 ||
    { tail -40 "$WORK/local.log"; fail "local smoke run"; }
say "local smoke run: $((SECONDS - started)) s"

say "SLURM smoke run"
started=$SECONDS
smk --directory "$WORK/slurm" --configfile config/smoke.yaml "${SLURM_ARGS[@]}" >"$WORK/slurm.log" 2>&1 ||
    { tail -60 "$WORK/slurm.log"; tail -20 "$CLUSTER/log/slurmctld.log"; fail "SLURM smoke run"; }
say "SLURM smoke run: $((SECONDS - started)) s"

"$PY" - "$WORK" <<'EOF'
"""Every job of the SLURM run was a completed SLURM job."""
import re
import subprocess
import sys
from pathlib import Path

work = Path(sys.argv[1])
log = (work / "slurm.log").read_text()
planned = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", log.split("Job stats:")[1].split("total")[0], re.M)}
planned.pop("all", None)
logs = sorted((work / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log"))
by_rule = {}
for path in logs:
    rule = path.relative_to(work / "slurm" / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
    by_rule.setdefault(rule, set()).add(path.stem)
states = dict(
    line.split()
    for line in subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, check=True).stdout.splitlines()
)
job_ids = set().union(*by_rule.values())
print(f"jobs planned (less the local rule all): {sum(planned.values())} in {len(planned)} rules")
print(f"SLURM job ids in .snakemake/slurm_logs: {len(job_ids)}; states: " + ", ".join(f"{s} {list(states[j] for j in job_ids if j in states).count(s)}" for s in sorted({states.get(j, 'unknown') for j in job_ids})))
for rule, count in sorted(planned.items()):
    print(f"  {rule}: {count} planned, {len(by_rule.get(rule, ()))} SLURM jobs")
assert {rule: len(ids) for rule, ids in by_rule.items()} == planned, "a job ran outside SLURM or twice"
assert all(states.get(j) == "COMPLETED" for j in job_ids), {j: states.get(j) for j in job_ids}
EOF
# Results, not timings: the timing keys are dropped by the rule training writes them by.
"$PY" "$REPO/benchmarks/same_results.py" "$WORK/local/results/smoke" "$WORK/slurm/results/smoke" ||
    fail "the SLURM run's results differ from the local run's"

fi

# --- scancel mid-training, then resume ------------------------------------------------------
if [[ " $PARTS " == *" scancel "* ]]; then
say "scancel mid-training: LeNet-5 for 40 epochs through SLURM"
"$PY" - "$REPO/config/smoke.yaml" "$WORK/lenet.yaml" <<'EOF'
import sys
import yaml
config = yaml.safe_load(open(sys.argv[1]))
config["runs"] = {"lenet5": ["relu-sgd"], "scratch_optimizers": [], "freeze_blocks": [], "freeze_optimizers": [],
                  "finetune_from": None, "gap_freeze_blocks": []}
config["training"]["epochs"]["lenet5"] = 40
config["explain"].update(runs=[], cam_run=None, onset={"runs": []})
yaml.safe_dump(config, open(sys.argv[2], "w"))
EOF
TARGET=results/smoke/runs/lenet5-relu-sgd/metrics.json
smk "$TARGET" --cores "$CPUS" --directory "$WORK/lenet-local" --configfile "$WORK/lenet.yaml" >"$WORK/lenet-local.log" 2>&1 ||
    { tail -40 "$WORK/lenet-local.log"; fail "local LeNet-5 run"; }
smk "$TARGET" --directory "$WORK/lenet" --configfile "$WORK/lenet.yaml" "${SLURM_ARGS[@]}" >"$WORK/lenet-1.log" 2>&1 &
FIRST=$!
STATE=$WORK/lenet/results/smoke/runs/lenet5-relu-sgd/resume/state.json
for _ in $(seq 600); do
    [ -s "$STATE" ] && [ "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['epoch'])" "$STATE" 2>/dev/null || echo 0)" -ge 3 ] && break
    sleep 0.5
done
JOB=$(squeue -h -t running -o '%i' | head -1)
[ -n "$JOB" ] || fail "no running training job to cancel"
EPOCH=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['epoch'])" "$STATE")
scancel "$JOB"
say "scancel $JOB after epoch $EPOCH of 40"
wait "$FIRST" && fail "the first run finished although its job was cancelled"
[ -e "$WORK/lenet/$TARGET" ] && fail "a cancelled job left $TARGET"
say "first run failed as it should: $(grep -m1 -iE 'cancel|error in rule' "$WORK/lenet-1.log" || true)"
smk "$TARGET" --directory "$WORK/lenet" --configfile "$WORK/lenet.yaml" "${SLURM_ARGS[@]}" >"$WORK/lenet-2.log" 2>&1 ||
    { tail -40 "$WORK/lenet-2.log"; fail "rerun after scancel"; }
grep -h "resuming from the end of epoch" "$WORK/lenet/results/smoke/logs/train/lenet5-relu-sgd.log" ||
    fail "the rerun did not resume"
"$PY" "$REPO/benchmarks/same_results.py" "$WORK/lenet-local/$TARGET" "$WORK/lenet/$TARGET" ||
    fail "the resumed run's metrics differ from the uninterrupted run's"
fi
say "SLURM jobs in all: $(squeue -h -t all -o '%T' | sort | uniq -c | tr '\n' ' ')"
say "PASS"
