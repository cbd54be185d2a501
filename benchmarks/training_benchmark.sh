#!/usr/bin/env bash
# The seed's recipe on the full MNIST split, run by the job (--recipe seed) and by the seed's plain script,
# one after the other in the same session so machine drift hits both alike.
#   bash benchmarks/training_benchmark.sh ../shared/data/mnist.npz > benchmarks/results/training-benchmark-$(date +%F).log
set -euo pipefail
data=${1:-../shared/data/mnist.npz}
out=$(mktemp -d)
export TF_CPP_MIN_LOG_LEVEL=2
echo "machine: $(nproc) cores, $(python -c 'import platform;print(platform.processor() or platform.machine())')"
python -c 'import tensorflow as tf, keras; print("tensorflow", tf.__version__, "keras", keras.__version__)'
for round in 1 2; do
  echo "== round $round: seed script"
  /usr/bin/time -f "seed wall %e s, peak RSS %M KB" python -m benchmarks.seed_train "$data" 2>&1 | grep -E "^seed"
  echo "== round $round: mnist-train"
  /usr/bin/time -f "mnist-train wall %e s, peak RSS %M KB" mnist-train --recipe seed --data "$data" --model-dir "$out" 2>&1 \
    | grep -E "^(done|mnist-train wall|data)"
done
python - "$out" <<'PY'
import json, sys, pathlib
for card in sorted(pathlib.Path(sys.argv[1]).glob("mnist/*/model_card.json")):
    c = json.loads(card.read_text())
    print(f"version {c['version']}: accuracy {c['test']['accuracy']:.4f}, training {c['training_seconds']} s, parity {c['litert_parity']}")
PY
