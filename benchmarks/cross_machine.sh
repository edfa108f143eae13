#!/usr/bin/env bash
# Do archives of the compiled (numba) models decode on another machine, and does that machine
# encode the same payload? Run on the other machine from the repo root with PYTHONPATH=.
# Usage: bash benchmarks/cross_machine.sh ORIGINAL "ARCHIVE=RUN ..."
#   ARCHIVE: an archive made on this project's machine; RUN: the run folder it was packed from.
# Each archive is decoded as a judge would (its own program, no project code on the path),
# timed, and compared with ORIGINAL; then RUN is packed again here and the two archives'
# members (payload p, tokenizer t) are compared byte for byte. Decodes run in parallel, then packs.
set -u
ORIGINAL=$1; PAIRS=$2
log() { echo "[$(date +%T)] $*"; }
PACKS=$(mktemp -d)  # the archives packed here (OUT keeps only the log)
SITE=${SITE:-}  # where carried packages were installed (numba's home if not the system's)

python3 -c "import numba, numpy, sys; print('python', sys.version.split()[0], 'numba', numba.__version__, 'numpy', numpy.__version__)"
grep -m1 'model name' /proc/cpuinfo; nproc

for pair in $PAIRS; do
  archive=${pair%%=*}; name=$(basename "$archive" .arc)
  (
    cd "$(mktemp -d)" || exit
    start=$(date +%s.%N)
    PYTHONPATH=$SITE python3 "$OLDPWD/$archive" -o restored -q 2>decode.err
    rc=$?; end=$(date +%s.%N)
    [ $rc = 0 ] || tail -5 decode.err
    same=$(cmp -s restored "$OLDPWD/$ORIGINAL" && echo BYTE-EXACT || echo DIFFERENT)
    echo "DECODE $name rc=$rc $(awk "BEGIN{print $end - $start}") s: $same"
  ) &
done
wait

for pair in $PAIRS; do
  archive=${pair%%=*}; run=${pair#*=}; name=$(basename "$archive" .arc)
  (
  start=$(date +%s.%N)
  python3 -m pipeline.cli pack "$run" -o "$PACKS/$name.arc" -q --force --data "$ORIGINAL" || { echo "PACK $name failed"; continue; }
  end=$(date +%s.%N)
  python3 - "$archive" "$PACKS/$name.arc" "$name" "$(awk "BEGIN{print $end - $start}")" <<'PY'
import hashlib, sys, zipfile
theirs, ours = (zipfile.ZipFile(p) for p in sys.argv[1:3])
for member in ("p", "t"):
    a, b = (hashlib.sha256(z.read(member)).hexdigest()[:16] for z in (theirs, ours))
    print(f"ENCODE {sys.argv[3]} ({sys.argv[4]} s) member {member}: {'IDENTICAL' if a == b else 'DIFFERENT'} {a} {b}")
PY
  ) &
done
wait
log done
