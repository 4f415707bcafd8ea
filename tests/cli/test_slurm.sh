#!/usr/bin/env bash
# test_slurm.sh: pdlaunch under a real Slurm (issue 16). Starts a private one-node cluster (munged,
# slurmctld, slurmd on loopback, its own ports, sockets and state under $TMP; root, as slurmd
# needs), then, with models/fmnist_cnn.yaml's 2-stage pipeline:
#  - salloc -n 2 pdlaunch GENDIR: mpirun takes the allocation's nodes and tasks (no hostfile);
#  - sbatch on the script `pdlaunch GENDIR --sbatch ...` prints: the job trains and completes;
#  - salloc -n 1: pdlaunch refuses, naming the tasks it has and the ranks it needs.
# The daemons are stopped on every exit (trap). SKIPs only where slurmd cannot run here (not
# root, or the packages missing and not installable), saying why. make deps installs slurm-wlm
# and munge.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
S=$TMP/slurm
stop_cluster() { # every daemon by its pid file, then anything still holding our config
    local f p
    [ -n "${SLURM_CONF:-}" ] && scancel --quiet -u root >/dev/null 2>&1
    for f in "$S/run/slurmd.pid" "$S/run/slurmctld.pid" "$S/run/munged.pid"; do
        p=$(cat "$f" 2>/dev/null) || continue
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
    for p in $(pgrep -f "$S/" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
}
trap 'stop_cluster; rm -rf "$TMP"' EXIT

need=(munged slurmctld slurmd salloc sbatch scancel sinfo)
missing() { local c; for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$c" >/dev/null 2>&1 || echo "$c"; done; }
export PATH=$PATH:/usr/sbin
if [ "$(id -u)" -ne 0 ]; then skip slurm "slurmd must run as root here (this test runs as $(id -un))"; finish; exit 0; fi
if [ -n "$(missing)" ] && command -v apt-get >/dev/null 2>&1; then
    echo "  installing slurm-wlm and munge (make deps does this)"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends slurm-wlm munge >"$TMP/apt.log" 2>&1 ||
        { timeout 120 apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends slurm-wlm munge >"$TMP/apt.log" 2>&1; }
fi
if [ -n "$(missing)" ]; then
    skip slurm "cannot run slurmd: $(missing | tr '\n' ' ')not installed and apt could not install them ($(tail -1 "$TMP/apt.log" 2>/dev/null))"
    finish; exit 0
fi

# ---- the cluster: munged, slurmctld, slurmd, on ports of their own ----
mkdir -p "$S"/{state,spool,log,run}
host=$(hostname -s)
port=$((20000 + ($$ % 10000) * 2))
head -c 1024 /dev/urandom >"$S/munge.key" && chmod 600 "$S/munge.key"
munged --key-file="$S/munge.key" --socket="$S/run/munge.sock" --pid-file="$S/run/munged.pid" \
    --log-file="$S/log/munged.log" --seed-file="$S/run/munge.seed" --force >"$S/log/munged.out" 2>&1 ||
    { skip slurm "munged does not start: $(tail -2 "$S/log/munged.out" "$S/log/munged.log" 2>/dev/null | tr '\n' ' ')"; finish; exit 0; }
cat >"$S/slurm.conf" <<EOF
ClusterName=pdtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$S/run/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
InactiveLimit=0
KillWait=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc)
PartitionName=pd Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
export SLURM_CONF=$S/slurm.conf
slurmctld -c -f "$SLURM_CONF" >"$S/log/slurmctld.out" 2>&1 && slurmd -N "$host" -f "$SLURM_CONF" >"$S/log/slurmd.out" 2>&1 ||
    { skip slurm "slurmctld/slurmd do not start: $(tail -3 "$S"/log/slurm*.log 2>/dev/null | tr '\n' ' ')"; finish; exit 0; }
up=0
for _ in $(seq 100); do sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && { up=1; break; }; sleep 0.1; done
[ "$up" = 1 ] || { fail slurm_cluster_up "the node never became idle: $(sinfo 2>&1 | tail -2; tail -3 "$S/log/slurmd.log" | tr '\n' ' ')"; finish; exit 1; }
pass slurm_cluster_up

# ---- the 2-stage fmnist_cnn pipeline ----
G=$TMP/fm
"$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight -q -o "$G" >"$TMP/plan.log" 2>&1 && make -s -C "$G" >"$TMP/make.log" 2>&1 ||
    { fail plan "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; finish; exit 1; }
train=(--data synthetic --synthetic-n 256 --steps 6 --no-eval --no-trace --log-every 2)

OUTPUT=$(timeout 120 salloc -n 2 -t 5 "$LAUNCH" "$G" "${train[@]}" --run-dir "$TMP/run_salloc" 2>&1); rc=$?
if [ "$rc" -eq 0 ] && grep -qE 'pdlaunch: Slurm job [0-9]+: 2 ranks on its 2 tasks' <<<"$OUTPUT" &&
   grep -q '"steps": 6' "$TMP/run_salloc/summary.json" 2>/dev/null; then
    pass salloc_pdlaunch_uses_allocation; echo "  $(grep -m1 'pdlaunch: Slurm job' <<<"$OUTPUT")"
else fail salloc_pdlaunch_uses_allocation "rc $rc: $(tail -5 <<<"$OUTPUT" | tr '\n' '|')"; fi

"$LAUNCH" "$G" --sbatch "${train[@]}" --run-dir "$TMP/run_sbatch" >"$TMP/job.sh" 2>"$TMP/sbatch.err"
if grep -q '^#SBATCH --ntasks=2$' "$TMP/job.sh" && grep -q "^exec .*pdlaunch $G " "$TMP/job.sh"; then
    # sbatch --wait polls every few seconds: poll the job's state ourselves, 10 times a second
    jid=$(cd "$TMP" && sbatch --parsable -t 5 "$TMP/job.sh" 2>"$TMP/sbatch.err") || jid=""
    state="" rc=1
    for _ in $(seq 1200); do
        [ -n "$jid" ] || break
        line=$(scontrol -o show job "$jid" 2>/dev/null)
        state="$(grep -oE 'JobState=[A-Z_]+' <<<"$line") $(grep -oE ' ExitCode=[0-9]+:[0-9]+' <<<"$line")"
        case "$state" in
            "JobState=COMPLETED  ExitCode=0:0") rc=0; break ;;
            JobState=PENDING*|JobState=RUNNING*|JobState=CONFIGURING*|JobState=COMPLETING*|" ") sleep 0.1 ;;
            *) break ;;
        esac
    done
    OUTPUT="job ${jid:-not submitted ($(cat "$TMP/sbatch.err"))}: $state"
    out=$(cat "$TMP"/run_sbatch/slurm-*.out 2>/dev/null)
    if [ "$rc" -eq 0 ] && grep -q '"steps": 6' "$TMP/run_sbatch/summary.json" 2>/dev/null &&
       grep -qE 'pdlaunch: Slurm job [0-9]+: 2 ranks on its 2 tasks' <<<"$out"; then
        pass sbatch_script_runs
    else fail sbatch_script_runs "rc $rc: $OUTPUT $(tail -5 <<<"$out" | tr '\n' '|')"; fi
else fail sbatch_script_printed "$(cat "$TMP/job.sh" "$TMP/sbatch.err")"; fi

OUTPUT=$(timeout 60 salloc -n 1 -t 5 "$LAUNCH" "$G" "${train[@]}" --run-dir "$TMP/run_small" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && grep -qE 'Slurm job [0-9]+ has 1 tasks; this plan needs 2 ranks' <<<"$OUTPUT"; then
    pass salloc_too_few_tasks_refused
else fail salloc_too_few_tasks_refused "rc $rc: $(tail -3 <<<"$OUTPUT" | tr '\n' '|')"; fi
finish
