#!/bin/bash
# Prepares what `benches/gpu_check.sh` needs on a lent GPU machine, in `.dev/` (git-ignored
# through .git/info/exclude, carried with the call): the CUDA build of `sda`, stripped and
# xz-compressed (`cuda`: 55 MiB → 8 MiB), and a 12/1/1-trajectory subset of a Kolmogorov
# dataset (29 MB), so that the whole tree stays under the 64 MiB a call may carry.
#
#   bash benches/gpu_prepare.sh data/kf16       # a dataset from `sda generate kolmogorov`:
#   (sda generate kolmogorov --trajectories 16 --grid 128 --coarsen 2 --out data/kf16, 23 s)
#   FEATURES=cuda-tuned bash benches/gpu_prepare.sh data/kf16   # burn's autotuned kernels
#
# The default build is the `cuda` feature: fixed kernels (no autotuning, no fusion), the
# fewest kernels to compile on first use, which took all of the first lease's time.
#
# The `cuda` release build took 8.5 minutes on 2 cores (2026-12-02). The device machine has
# no Rust toolchain and no network, so everything it runs is built here.
set -euo pipefail
data=${1:?usage: gpu_prepare.sh <kolmogorov dataset folder>}
grep -qx '/.dev/' .git/info/exclude || echo '/.dev/' >> .git/info/exclude
features=${FEATURES:-cuda}
cargo build --release --features "$features" --target-dir "target/$features"
mkdir -p .dev/kd
strip -o .dev/sda "target/$features/release/sda"
rm -f .dev/sda.xz && xz -T2 -6 .dev/sda
echo "$features" > .dev/features
# The first trajectories of each split, cut from the `.npy` files directly (no NumPy needed:
# `sda generate` writes little-endian f32 in C order).
python3 - "$data" <<'EOF'
import ast, struct, sys
src = sys.argv[1]
for split, n in [("train", 12), ("valid", 1), ("test", 1)]:
    with open(f"{src}/{split}.npy", "rb") as f:
        magic, major = f.read(6), f.read(2)[0]
        assert magic == b"\x93NUMPY", f"{split}.npy is not an .npy file"
        size = struct.unpack("<H" if major == 1 else "<I", f.read(2 if major == 1 else 4))[0]
        header = ast.literal_eval(f.read(size).decode("latin1"))
        assert header["descr"] == "<f4" and not header["fortran_order"], header
        shape = header["shape"]
        n = min(n, shape[0])
        per = 4
        for d in shape[1:]:
            per *= d
        data = f.read(n * per)
    text = repr({"descr": "<f4", "fortran_order": False, "shape": (n,) + tuple(shape[1:])})
    text += " " * (-(len(text) + 11) % 64) + "\n"
    with open(f".dev/kd/{split}.npy", "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1") + data)
EOF
cp "$data/manifest.json" .dev/kd/
du -sh .dev
