#!/bin/bash
# The Lorenz-63 protocol of the book (k = 3 preset, test observations 0–15, 64 samples, "lo" and
# "hi") for the calibrated samplers, on a lent GPU. Prepared here by
#
#   cargo build --release --features cuda --target-dir target/cuda
#   mkdir -p .dev && strip -o .dev/sda target/cuda/release/sda && xz -T2 -f .dev/sda
#   cp -r data/lorenz63 .dev/lorenz63 && cp -r runs/lorenz-k3w .dev/lorenz-k3w   # the preset
#
# and run through the device tool (`run` with carry [".dev"], timeout_s 590). Each evaluation
# writes its rows as it goes (`rows.jsonl`, resumable) into $OUT/<name>, so a call cut short
# keeps what it finished; its table is `$OUT/<name>/table.md`.
set -u
T0=$(date +%s)
B=/tmp/sda; W=/tmp/w; C=/tmp/cubecl-cache; mkdir -p $W $C
exec > >(tee "$OUT/log.txt") 2>&1
log() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
xz -dc .dev/sda.xz > $B && chmod +x $B || { log "no .dev/sda.xz"; exit 1; }
[ -d .dev/cubecl-cache ] && cp -r .dev/cubecl-cache/. $C/ && log "reusing a carried kernel cache"
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
cat > cubecl.toml <<EOF2
[compilation]
cache = { file = "$C" }
[autotune]
level = "minimal"
cache = { file = "$C" }
EOF2
BUDGET=${BUDGET:-560}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
COMMON=(--run .dev/lorenz-k3w --data .dev/lorenz63 --observations 16 --samples 64)
# name, then the evaluate flags
ev() {
  local name=$1; shift
  local t=$(left)
  [ "$t" -lt 20 ] && { log "skipped $name (no time left)"; return; }
  log "$name (at most $t s)"
  timeout $t $B evaluate "${COMMON[@]}" "$@" --out "$OUT/$name" > $W/$name.log 2>&1
  log "$name ended (rc $?)"; tail -c 1500 "$OUT/$name/table.md" 2>/dev/null || tail -c 600 $W/$name.log
}
DIAG='corrector = "diagonal", tau = 0.15'
ev lo-diag --observation lo --steps 256 --time-grid log-snr \
  --sampler pc --sampler-params "corrections = 4, $DIAG" \
  --sampler pc --sampler-params "corrections = 2, $DIAG"
ev hi-diag --observation hi --steps 256 --time-grid log-snr \
  --sampler pc --sampler-params "corrections = 4, $DIAG" \
  --sampler pc --sampler-params "corrections = 2, $DIAG"
ev lo-paper --observation lo --steps 256 --corrections 4
ev lo-mmps --observation lo --steps 256 --time-grid log-snr --guidance mmps \
  --guidance-params 'iterations = 1' --sampler pc --sampler-params "corrections = 2, $DIAG"
tar -C $C -cJf "$OUT/cubecl-cache.tar.xz" . 2>/dev/null
rm -f cubecl.toml
log "done"
