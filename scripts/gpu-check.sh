#!/usr/bin/env bash
# Every GPU check of issues 3, 4, 5 and 7 in one device run (see ../shared/gpu/README.md).
#
# Here, from the repository root:   bash scripts/gpu-check.sh pack
#   publishes the tests, the benchmarks and the lab into .gpu/ (compressed to fit the 64 MiB that travels)
# Then with the device tool:        run  command: "bash scripts/gpu-check.sh run"  carry: [".gpu"]
#   runs the CUDA tests (CPU = CUDA for presets, grafts, the zoo; non-finite skipping and recording on the device),
#   the device timing at 100M float32 parameters (synchronised, enqueue, and enqueue while the GPU is busy: a step
#   that synchronised would wait for the queued work), the flat-buffer / TorchScript experiment and the NVRTC-kernel
#   experiment for the 1.3 ms target,
#   the fused CPU kernels' tests and timing on the host's 16 cores,
#   and the lab's --quick run with --device cuda.
set -euo pipefail
case "${1:-}" in
pack)
  rm -rf .gpu/AdaGraft.* .gpu/apps.tar.xz
  ../shared/gpu/pack.sh tests/AdaGraft.Tests/AdaGraft.Tests.csproj benchmarks/AdaGraft.Benchmarks/AdaGraft.Benchmarks.csproj samples/AdaGraft.Lab/AdaGraft.Lab.csproj
  cd .gpu
  rm -rf AdaGraft.Tests/Microsoft.CodeCoverage AdaGraft.Benchmarks/amd64 AdaGraft.Benchmarks/Microsoft.CodeAnalysis*.dll AdaGraft.Benchmarks/Microsoft.Diagnostics.Tracing.TraceEvent.dll
  for d in AdaGraft.*; do find "$d" -mindepth 1 -maxdepth 1 -type d \( -name '??' -o -name '??-*' \) -exec rm -rf {} +; done
  # pack.sh drops every native library but TorchSharp's; the lab's plots need SkiaSharp's.
  cp ../samples/AdaGraft.Lab/bin/Release/net10.0/runtimes/linux-x64/native/lib{SkiaSharp,HarfBuzzSharp}.so AdaGraft.Lab/
  tar -cf - AdaGraft.Tests AdaGraft.Benchmarks AdaGraft.Lab | xz -T0 -6 > apps.tar.xz
  rm -rf AdaGraft.Tests AdaGraft.Benchmarks AdaGraft.Lab
  du -sh .
  ;;
run)
  tar -xJf .gpu/apps.tar.xz -C .gpu
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  # The tests decide the exit code (the timings and experiments after them are reports): a failed or timed-out test
  # run makes the script exit non-zero once everything else has run.
  tests_rc=0
  timeout 170 bash .gpu/run.sh AdaGraft.Tests/AdaGraft.Tests.dll -class AdaGraft.Tests.CudaTests -class AdaGraft.Tests.Fused.FusedKernelTests -class AdaGraft.Tests.Fused.FusedBlackBoxTests -class AdaGraft.Tests.Hardening.FastPathMisuseTests -class AdaGraft.Tests.Preconditioners.MuonCudaTests -class AdaGraft.Tests.Preconditioners.SoapCudaTests -class AdaGraft.Tests.Preconditioners.ShampooStateTests -class AdaGraft.Tests.Cuda.CudaNoSyncTests > "$OUT/cuda-tests-full.txt" 2>&1 || tests_rc=$?
  tail -40 "$OUT/cuda-tests-full.txt" | tee "$OUT/cuda-tests.txt"
  # A renamed class would match no test and pass vacuously: demand at least as many as the run of 2026-11-30 (594, before two ReduceSquaredNorms cases were added),
  # none skipped (on the GPU machine nothing may skip for want of CUDA or of the sync detector).
  total=$(sed -n 's/.*Total: \([0-9]*\),.*/\1/p' "$OUT/cuda-tests-full.txt" | tail -1)
  skipped=$(sed -n 's/.*Skipped: \([0-9]*\),.*/\1/p' "$OUT/cuda-tests-full.txt" | tail -1)
  if [ "${total:-0}" -lt 594 ] || [ "${skipped:-1}" -ne 0 ]; then
    echo "expected at least 594 CUDA/fused tests and none skipped, found ${total:-none} (${skipped:-?} skipped)" | tee -a "$OUT/cuda-tests.txt"
    [ "$tests_rc" -ne 0 ] || tests_rc=3
  fi
  echo "test exit code: $tests_rc" | tee -a "$OUT/cuda-tests.txt"
  timeout 140 bash .gpu/run.sh AdaGraft.Benchmarks/AdaGraft.Benchmarks.dll --device-timing cuda 10000000 2>&1 | tail -20 | tee "$OUT/timing.txt" || true
  # Experiment: SGD#Adam over flat buffers, eager and as one TorchScript function (checked against GraftOptimizer first).
  timeout 50 bash .gpu/run.sh AdaGraft.Benchmarks/AdaGraft.Benchmarks.dll --flat-experiment cuda 10000000 2>&1 | tail -9 | tee "$OUT/flat-experiment.txt" || true
  # Experiment: SGD#Adam as two NVRTC kernels per tensor on libtorch's stream (checked against GraftOptimizer first).
  # NVRTC comes with PyTorch's CUDA wheels (nvidia-*-nvrtc); its builtins library must be on the loader path.
  nvrtc=$(python3 -c "import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
hits = [p for r in roots for p in glob.glob(os.path.join(r, '**', 'libnvrtc.so*'), recursive=True) if 'builtins' not in p]
print(sorted(hits)[0] if hits else '')" 2>/dev/null || true)
  echo "nvrtc: ${nvrtc:-not found}" | tee "$OUT/cuda-kernel-experiment.txt"
  ADAGRAFT_NVRTC="$nvrtc" LD_LIBRARY_PATH="$(dirname "${nvrtc:-/nonexistent/x}"):${LD_LIBRARY_PATH:-}" \
    timeout 60 bash .gpu/run.sh AdaGraft.Benchmarks/AdaGraft.Benchmarks.dll --cuda-kernel-experiment 10000000 2>&1 | tail -12 | tee -a "$OUT/cuda-kernel-experiment.txt" || true
  # The fused CPU kernels on the device host's 16 cores (10 x 1M float32), for comparison with the 2-core VM.
  timeout 50 bash .gpu/run.sh AdaGraft.Benchmarks/AdaGraft.Benchmarks.dll --device-timing cpu 1000000 2>&1 | tail -20 | tee "$OUT/cpu-timing.txt" || true
  (cd .gpu/AdaGraft.Lab && timeout 100 bash ../run.sh AdaGraft.Lab/AdaGraft.Lab.dll --quick --device cuda --out /tmp/labout 2>&1 | tail -40) | tee "$OUT/lab.txt" || true
  { ls /tmp/labout; head -40 /tmp/labout/report.md; } >> "$OUT/lab.txt" 2>&1 || true
  if [ "$tests_rc" -ne 0 ]; then
    echo "CUDA/fused tests failed (exit $tests_rc): see cuda-tests-full.txt" >&2
    exit 1
  fi
  ;;
*)
  echo "usage: bash scripts/gpu-check.sh pack|run" >&2
  exit 2
  ;;
esac
