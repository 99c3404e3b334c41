#!/usr/bin/env bash
# Issue #18's GPU check, in one call of the device tool (about 9 minutes of run time).
# Here, first:
#   bash ../shared/device/build_bundle.sh                      # .device/: spaCy, this wheel, MiniLM int8
#   python benchmarks/gpu_check.py prepare .device/data        # the corpora as DocBins (2 MB)
# On the device (repo copy, carry [".device"]): bash benchmarks/gpu_check.sh
# Four jobs run at once on the one GPU, each under `timeout`, logging as it goes:
#   tests      the GPU tier (BIONER_TEST_GPU=1), junit XML and log
#   tagger     bioner_tagger (CRF) vs spaCy ner on MiniLM, NCBI-disease, $TAGGER_STEPS steps each, then words/s
#   relations  configs/relations_trf.cfg on CoNLL04, $RELATION_STEPS steps
#   llm        SmolLM2 VANER bidirectional vs causal, $LLM_STEPS steps each (needs .device/smollm2/)
# A job that fails or times out leaves the others; $OUT/gpu_check.json is always written.
# JOBS="tests" (any of the four names) runs only those, e.g. with TEST_ARGS="tests/test_gpu.py"
# (pytest's own arguments: only those test files) to recheck a few failures.
# GPU_ID=-1 runs the Python jobs on the CPU (try them here with tiny *_STEPS).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}; mkdir -p "$OUT"
GPU_ID=${GPU_ID:-0}
TAGGER_STEPS=${TAGGER_STEPS:-300}; RELATION_STEPS=${RELATION_STEPS:-500}; LLM_STEPS=${LLM_STEPS:-100}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}; JOB_TIMEOUT=${JOB_TIMEOUT:-420}
JOBS=${JOBS:-tests tagger relations llm}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
t0=$(date +%s)
log() { echo "[gpu_check +$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/gpu_check.log"; }

PY=python3
if [ -f .device/site.tar.xz ]; then
  S=/tmp/site; mkdir -p $S && tar -xJf .device/site.tar.xz -C $S &&
    (cd $S && for w in "$OLDPWD"/.device/*.whl; do python3 -m zipfile -e "$w" .; done)
  export PYTHONPATH=$S
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
fi
TRF=${TRANSFORMER:-/tmp/minilm}
if [ "$JOBS" != tests ] && [ -f .device/minilm.tar.xz ] && [ ! -f "$TRF/model.safetensors" ]; then
  tar -xJf .device/minilm.tar.xz -C /tmp && $PY .device/int8.py dequantize /tmp/minilm/q.safetensors /tmp/minilm/model.safetensors
fi
log "unpacked; $($PY -c 'import spacy, torch; print("spacy", spacy.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1)"
[ "$GPU_ID" -ge 0 ] && nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv,noheader | tee -a "$OUT/gpu_check.log"

job() {  # name timeout command...: run in the background, its log under $OUT, its exit status in $OUT/<name>.rc
  local name=$1 limit=$2; shift 2
  [[ " $JOBS " == *" $name "* ]] || return 0
  ( timeout --signal=INT --kill-after=20 "$limit" "$@" > "$OUT/$name.log" 2>&1; echo $? > "$OUT/$name.rc"; log "$name done (exit $(cat "$OUT/$name.rc"))" ) &
}
common=(--data .device/data --transformer "$TRF" --gpu-id "$GPU_ID")
job tests "$TEST_TIMEOUT" env BIONER_TEST_GPU=$([ "$GPU_ID" -ge 0 ] && echo 1 || echo 0) $PY -m pytest -q -m "not models" \
  $([ "${TEST_WORKERS:-8}" -gt 0 ] && echo "-n ${TEST_WORKERS:-8}") -p no:cacheprovider --junitxml="$OUT/tests.xml" ${TEST_ARGS:-}
job tagger "$JOB_TIMEOUT" $PY benchmarks/gpu_check.py tagger "$OUT/tagger.json" "${common[@]}" --steps "$TAGGER_STEPS"
job relations "$JOB_TIMEOUT" $PY benchmarks/gpu_check.py relations "$OUT/relations.json" "${common[@]}" --steps "$RELATION_STEPS"
job llm "$JOB_TIMEOUT" $PY benchmarks/gpu_check.py llm "$OUT/llm.json" "${common[@]}" --steps "$LLM_STEPS"
while [ "$(jobs -r | wc -l)" -gt 0 ]; do  # progress every 30 s: the last line of each log
  sleep 30
  for name in $JOBS; do
    [ -f "$OUT/$name.rc" ] || log "$name: $(tail -c 300 "$OUT/$name.log" 2>/dev/null | tr '\r' '\n' | grep -v '^\s*$' | tail -1)"
  done
  [ "$GPU_ID" -ge 0 ] && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader >> "$OUT/gpu_check.log"
done
wait
$PY - "$OUT" $JOBS <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
results = {}
for name in sys.argv[2:]:
    rc = (out / f"{name}.rc").read_text().strip() if (out / f"{name}.rc").exists() else None
    entry = {"exit": rc, "timed_out": rc in ("124", "137")}
    if (out / f"{name}.json").exists():
        entry["result"] = json.loads((out / f"{name}.json").read_text())
    log = out / f"{name}.log"
    if log.exists():
        entry["log_tail"] = log.read_text(errors="replace")[-1500:]
    results[name] = entry
(out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
print(json.dumps({k: {"exit": v["exit"], **({"result": v["result"]} if "result" in v else {})} for k, v in results.items()}, indent=1))
EOF
# at most 8 files come back: keep the JSON, the summary log and the job logs
rm -f "$OUT"/*.rc "$OUT"/tagger.json "$OUT"/relations.json "$OUT"/llm.json
log "finished"
