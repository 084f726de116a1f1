#!/usr/bin/env bash
# A Dask cluster on this machine for Beam's DaskRunner: one `dask scheduler` and N `dask worker`
# processes, all on 127.0.0.1. Prints the scheduler address and the pairsmith options that use it,
# then waits; Ctrl-C (or SIGTERM) stops every process it started.
#
#   infra/dask/local_cluster.sh [N_WORKERS]         (default 2)
#
# Environment: DASK (the dask CLI; default: the one on PATH, else .venv/bin/dask), SCHEDULER_PORT
# (8786), DASHBOARD_PORT (8787), NTHREADS (threads per worker, 1), MEMORY_LIMIT (per worker, "auto"),
# LOG_DIR (default: a new temporary folder). The workers import pairsmith, so run this from the
# environment that pairsmith is installed in (the repository's .venv, or the worker image).
set -euo pipefail

N_WORKERS="${1:-${N_WORKERS:-2}}"
SCHEDULER_PORT="${SCHEDULER_PORT:-8786}"
DASHBOARD_PORT="${DASHBOARD_PORT:-8787}"
NTHREADS="${NTHREADS:-1}"
MEMORY_LIMIT="${MEMORY_LIMIT:-auto}"
HOST=127.0.0.1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [[ -z "${DASK:-}" ]]; then
  if command -v dask >/dev/null 2>&1; then DASK="$(command -v dask)"
  elif [[ -x "$ROOT/.venv/bin/dask" ]]; then DASK="$ROOT/.venv/bin/dask"
  else
    echo "no dask CLI found: pip install 'dask[distributed]' into pairsmith's environment, or set DASK" >&2
    exit 2
  fi
fi
if ! [[ "$N_WORKERS" =~ ^[1-9][0-9]*$ ]]; then
  echo "N_WORKERS must be a positive integer, got '$N_WORKERS'" >&2
  exit 2
fi

# What pairsmith's CLI sets for itself; the workers run the same annotators, so they need it too.
export NO_ALBUMENTATIONS_UPDATE="${NO_ALBUMENTATIONS_UPDATE:-1}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"

LOG_DIR="${LOG_DIR:-$(mktemp -d -t pairsmith-dask.XXXXXX)}"
mkdir -p "$LOG_DIR"
ADDRESS="tcp://$HOST:$SCHEDULER_PORT"
PIDS=()

# Stop the given processes: SIGTERM, up to 10 s to exit, then SIGKILL.
terminate() {
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 20); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.5
  done
  kill -KILL "$@" 2>/dev/null || true
}

# Workers first (they close cleanly while the scheduler is up), then the scheduler.
stop() {
  trap - EXIT INT TERM
  if ((${#PIDS[@]})); then
    echo "stopping ${#PIDS[@]} dask processes (${PIDS[*]})" >&2
    terminate "${PIDS[@]:1}"
    terminate "${PIDS[0]}"
    wait 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

if port_open "$SCHEDULER_PORT"; then
  echo "port $SCHEDULER_PORT on $HOST is already in use; set SCHEDULER_PORT" >&2
  exit 2
fi

"$DASK" scheduler --host "$HOST" --port "$SCHEDULER_PORT" \
  --dashboard-address "$HOST:$DASHBOARD_PORT" >"$LOG_DIR/scheduler.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 60); do
  port_open "$SCHEDULER_PORT" && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$LOG_DIR/scheduler.log" >&2; exit 1; }
  sleep 0.5
done
port_open "$SCHEDULER_PORT" || { echo "scheduler did not listen on $ADDRESS" >&2; exit 1; }

for i in $(seq 1 "$N_WORKERS"); do
  "$DASK" worker "$ADDRESS" --host "$HOST" --name "pairsmith-worker-$i" --nthreads "$NTHREADS" \
    --memory-limit "$MEMORY_LIMIT" --local-directory "$LOG_DIR/worker-$i" \
    --dashboard-address "$HOST:0" >"$LOG_DIR/worker-$i.log" 2>&1 &
  PIDS+=("$!")
done

# Wait until every worker has registered with the scheduler (its log says so once per worker).
for _ in $(seq 1 120); do
  registered=$(grep -c "Register worker" "$LOG_DIR/scheduler.log" || true)
  ((registered >= N_WORKERS)) && break
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a dask process exited; logs in $LOG_DIR" >&2; exit 1; }
  done
  sleep 0.5
done
if ((registered < N_WORKERS)); then
  echo "only $registered of $N_WORKERS workers registered; logs in $LOG_DIR" >&2
  exit 1
fi

cat <<MSG
dask scheduler: $ADDRESS  (dashboard http://$HOST:$DASHBOARD_PORT/status)
workers: $N_WORKERS x $NTHREADS thread(s); logs in $LOG_DIR
run pairsmith on it:
  pairsmith run --input PAIRS --out OUT --set runner.runner=DaskRunner \\
    --set 'runner.options=["--dask_client_address=$ADDRESS"]'
Ctrl-C stops the cluster.
MSG

# Stay up until interrupted, or until the scheduler or a worker dies.
while true; do
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "dask process $pid exited; logs in $LOG_DIR" >&2; exit 1; }
  done
  sleep 2
done
