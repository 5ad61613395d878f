#!/bin/bash
# Prepares what `benches/gpu_check.sh` needs on a lent GPU machine, in `.dev/` (git-ignored
# through .git/info/exclude, carried with the call): the CUDA build of `sda`, stripped and
# xz-compressed (93 MB → 10 MB), and a 12/1/1-trajectory subset of a Kolmogorov dataset
# (29 MB), so that the whole tree stays under the 64 MiB a call may carry.
#
#   bash benches/gpu_prepare.sh data/kf128      # a dataset from `sda generate kolmogorov`
#   FEATURES=cuda-tuned bash benches/gpu_prepare.sh data/kf128   # burn's autotuned kernels
#
# The default build is the `cuda` feature: fixed kernels (no autotuning, no fusion), the
# fewest kernels to compile on first use, which took all of the first lease's time.
#
# The build takes about 14 minutes on 2 cores. The device machine has no Rust toolchain and
# no network, so everything it runs is built here.
set -euo pipefail
data=${1:?usage: gpu_prepare.sh <kolmogorov dataset folder>}
grep -qx '/.dev/' .git/info/exclude || echo '/.dev/' >> .git/info/exclude
features=${FEATURES:-cuda}
cargo build --release --features "$features" --target-dir "target/$features"
mkdir -p .dev/kd
strip -o .dev/sda "target/$features/release/sda"
rm -f .dev/sda.xz && xz -T2 -6 .dev/sda
echo "$features" > .dev/features
python3 - "$data" <<'EOF'
import sys, numpy as np
src = sys.argv[1]
for split, n in [("train", 12), ("valid", 1), ("test", 1)]:
    a = np.load(f"{src}/{split}.npy", mmap_mode="r")
    np.save(f".dev/kd/{split}.npy", np.ascontiguousarray(a[:n]).astype("<f4"))
EOF
cp "$data/manifest.json" .dev/kd/
du -sh .dev
