#!/usr/bin/env bash
# The README's first command, timed as a new user meets it: `pip install -e .` into a new venv with
# no pip cache (every wheel downloaded), then the quickstart run from that venv. Run it on a quiet
# machine (nothing else running); writes WORKDIR/timing.json and prints it.
#   bash experiments/quickstart_results/time_install_and_run.sh [WORKDIR]   (default runs/quickstart_timed)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORKDIR=${1:-runs/quickstart_timed}
if [ -e "$WORKDIR" ]; then echo "$WORKDIR exists: the run would skip its finished stages" >&2; exit 2; fi
VENV_PARENT=$(mktemp -d)
trap 'rm -rf "$VENV_PARENT"' EXIT
python -m venv "$VENV_PARENT/venv"
start=$(date +%s.%N)
"$VENV_PARENT/venv/bin/pip" install -q --no-cache-dir -e .
installed=$(date +%s.%N)
"$VENV_PARENT/venv/bin/python" -m dsmath_jax.main --config=configs/quickstart.py --workdir="$WORKDIR"
finished=$(date +%s.%N)
python - "$WORKDIR" "$start" "$installed" "$finished" <<'EOF'
import json, os, sys, time
workdir, start, installed, finished = sys.argv[1], *map(float, sys.argv[2:])
summary = json.load(open(os.path.join(workdir, "summary.json")))
timing = dict(install_s=round(installed - start, 1), run_s=round(finished - installed, 1),
              total_s=round(finished - start, 1), greedy_accuracy=summary["greedy_accuracy"],
              date=time.strftime("%Y-%m-%d %H:%M"), load_after=os.getloadavg())
with open(os.path.join(workdir, "timing.json"), "w") as f:
  json.dump(timing, f, indent=1)
print(json.dumps(timing))
EOF
