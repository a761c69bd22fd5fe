#!/bin/bash
# Runs long apps.reproduce jobs one after another, in the background, resumably.
#
#   tools/run_queue.sh RUNS_DIR            # e.g. nohup tools/run_queue.sh /work/runs &
#
# RUNS_DIR/queue.txt holds one job per line: "<checkout> <model> [apps.reproduce flags]"
# (the checkout is a git worktree with .venv, so that editing the main checkout
# never changes a running job's code; '#' starts a comment). A job's output goes to
# RUNS_DIR/<model>.log and its exit status to RUNS_DIR/queue.log as "<model>_RC=<rc>";
# a model already there is skipped (delete its line there to run it again), so lines
# may be appended while the queue runs and a stopped queue restarts where it was
# (apps.reproduce resumes each run from its BackupAndRestore backup and reuses
# finished stages). Results go to
# RUNS_DIR/results; land them from the main checkout with
#   python -m apps.reproduce --model=NAME --runs_dir=RUNS_DIR --report_only --ship_weights
# One TensorFlow job at a time: on a small machine two would share its cores.
set -u
runs=${1:?usage: tools/run_queue.sh RUNS_DIR}
data_dir=${DATA_DIR:-/work/shared/data}
cd "$runs" || exit 2
while true; do
  job=""
  while read -r checkout model flags; do
    [ -z "${checkout:-}" ] && continue
    case "$checkout" in \#*) continue;; esac
    grep -q "^${model}_RC=" queue.log 2>/dev/null && continue
    job="$checkout $model $flags"; break
  done < queue.txt
  [ -z "$job" ] && { echo "$(date -u) queue empty" >> queue.log; exit 0; }
  echo "$(date -u) START $model $flags" >> queue.log
  (cd "$checkout" && TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m apps.reproduce --model="$model" \
     --data_dir="$data_dir" --runs_dir="$runs" --results_dir="$runs/results" --ship_weights \
     $flags) >> "$runs/$model.log" 2>&1
  echo "${model}_RC=$? $(date -u)" >> queue.log
done
