#!/usr/bin/env bash
# The mutation claims in docs/guarantees.md, checked: applies each mutation below to a fresh copy of the committed source
# (git archive HEAD, so the working tree is never touched), builds, runs the tests that should catch it, and prints
# how many fail ("crashed" when the test process died, which also counts as caught). The unmutated copy runs first
# and must pass. Exits non-zero when a mutation's pattern is not found (the script has drifted from the code) or when
# a mutation is caught by no test.
#
#   bash scripts/mutate.sh            # all mutations (about 1.5 minutes each on 2 cores)
#   bash scripts/mutate.sh tail ratio # only the named ones
#   bash scripts/mutate.sh --check    # only that every pattern is found exactly once in the working tree (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
check_only=0
if [ "${1:-}" = "--check" ]; then
  check_only=1
  shift
else
  work=$(mktemp -d /tmp/adagraft-mutate.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  git archive HEAD | tar -x -C "$work"
  cd "$work"
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# The tests the claims are about: the fused-kernel and black-box tables, the parity table (both paths) and the
# fast-path misuse tests.
filter='FullyQualifiedName~AdaGraft.Tests.Fused|FullyQualifiedName~AdaGraft.Tests.ParityTests|FullyQualifiedName~FastPathMisuseTests'

# Each mutation is four entries: name, file, exact text (found exactly once), replacement.
mutations=(
  factor src/AdaGraft/Rules/SecondMomentRule.cs
  "            C1 = c1,"
  "            C1 = c1 * (1 + 1e-6),"
  tail src/AdaGraft/Rules/FusedCpu.Algorithm1.cs
  $'        Out(tw, w, i, count);\n        TailOut(plan, i, count, t1, t2, tv);'
  $'        Out(tw, w, i, count - 1);\n        TailOut(plan, i, count, t1, t2, tv);'
  ratio src/AdaGraft/Grafting/FusedLayout.cs
  $'            Ratio[s] = _ratioOf(MagnitudeNorm[s], DirectionNorm[s]);\n        }\n    }'
  $'            Ratio[s] = _ratioOf(MagnitudeNorm[s], DirectionNorm[s]) * (1 + 1e-9);\n        }\n    }'
  weight-decay-read src/AdaGraft/Rules/FusedCpu.Algorithm1.cs
  "        bool needW = km.Coupled || km.HasDecay || kd.Coupled || kd.HasDecay;"
  "        bool needW = false;"
  version-bump src/AdaGraft/Rules/FusedCpu.cs
  $'            if (_native) NativeVersion.Bump(t);\n            else _view!.zero_();'
  $'            if (address == (IntPtr)(-1)) {\n                if (_native) NativeVersion.Bump(t);\n                else _view!.zero_();\n            }'
  state-extent-check src/AdaGraft/Rules/RuleState.cs
  "            if (SlotFits(i, s)) continue;"
  "            if (true || SlotFits(i, s)) continue;"
  gradient-shape-check src/AdaGraft/Optimizers/GradientChecks.cs
  "        if (!SameShape(grad, p))"
  "        if (false && !SameShape(grad, p))"
)

run_tests() {
  dotnet build tests/AdaGraft.Tests -c Release -v q -nologo > build.log 2>&1 || { tail -20 build.log; return 2; }
  set +e
  timeout 900 dotnet test tests/AdaGraft.Tests -c Release --no-build --filter "$filter" > test.log 2>&1
  local rc=$?
  set -e
  local line
  line=$(grep -E "^(Passed|Failed)!" test.log | tail -1 || true)
  if grep -qiE "test run aborted|active test run was aborted|crashed" test.log; then
    echo "crashed: the test host died (exit $rc) after ${line:-no summary}" | sed -E 's/(Passed|Failed)! *- *//'
  elif [ -z "$line" ]; then
    echo "crashed (exit $rc, no summary)"
  else
    echo "$line" | sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+).*/\1 failed, \2 passed/'
  fi
}

want=("$@")
status=0
if [ "$check_only" = 1 ]; then
  for ((k = 0; k < ${#mutations[@]}; k += 4)); do
    name=${mutations[k]} file=${mutations[k+1]} old=${mutations[k+2]}
    if ! python3 -c 'import sys; n = open(sys.argv[1]).read().count(sys.argv[2]); sys.exit(0 if n == 1 else f"{sys.argv[3]}: pattern found {n} times in {sys.argv[1]} (scripts/mutate.sh has drifted from the code)")' "$file" "$old" "$name"; then
      status=1
    fi
  done
  [ "$status" = 0 ] && echo "mutate.sh: all $(( ${#mutations[@]} / 4 )) mutation patterns found once each"
  exit $status
fi
echo "unmutated: $(run_tests)"
# The unmutated copy must pass: name any test that failed there.
grep -E "^\s*Failed [A-Za-z]" test.log | sed 's/^/  /' || true
for ((k = 0; k < ${#mutations[@]}; k += 4)); do
  name=${mutations[k]} file=${mutations[k+1]} old=${mutations[k+2]} new=${mutations[k+3]}
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  cp "$file" "$file.orig"
  if ! python3 - "$file" "$old" "$new" <<'EOF'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
n = text.count(old)
if n != 1:
    sys.exit(f"pattern found {n} times in {path}: {old!r}")
open(path, "w").write(text.replace(old, new))
EOF
  then
    echo "$name: PATTERN NOT FOUND (the script has drifted from the code)"
    status=1
    continue
  fi
  result=$(run_tests)
  echo "$name: $result"
  case "$result" in
    "0 failed"*) status=1 ;;
  esac
  mv "$file.orig" "$file"
done
exit $status
