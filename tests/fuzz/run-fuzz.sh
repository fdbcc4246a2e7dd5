#!/bin/sh
# Run libFuzzer harnesses for a bounded time each (make fuzz-smoke / fuzz).
#
#   run-fuzz.sh SECONDS SRCDIR tests/fuzz/fuzz_NAME...
#
# For each harness fuzz_NAME: copy SRCDIR/tests/fuzz/corpus/NAME/ to
# tests/fuzz/run/NAME/corpus (relative to the current directory, the build
# tree: the source tree is never written), replay every seed, fuzz for
# SECONDS, print the execution count.  Any crash, leak, sanitizer report,
# timeout, out-of-memory or harness invariant failure makes the run fail;
# the input is kept in tests/fuzz/run/NAME/ and its path printed.  Every
# harness runs even when an earlier one failed; the exit status is 1 if any
# did.  tests/fuzz/NAME.dict (or fuzz_NAME.dict) is used when present.
set -u

if [ $# -lt 3 ]; then
    echo "usage: $0 SECONDS SRCDIR HARNESS..." >&2
    exit 2
fi
secs=$1
srcdir=$2
shift 2

case $secs in
'' | *[!0-9]*)
    echo "run-fuzz.sh: FUZZ_SECONDS must be a whole number of seconds, not '$secs'" >&2
    exit 2
    ;;
esac

# A slow input is a bug too (quadratic parsing is a DoS): a single input
# may take at most this long.
timeout_s=${FUZZ_TIMEOUT:-20}
failed=
summary=

for bin in "$@"; do
    name=$(basename "$bin")
    short=${name#fuzz_}
    seeds=$srcdir/tests/fuzz/corpus/$short
    work=tests/fuzz/run/$short
    if [ ! -x "$bin" ]; then
        echo "FUZZ $name: harness $bin was not built" >&2
        failed="$failed $name"
        continue
    fi
    if [ ! -d "$seeds" ]; then
        echo "FUZZ $name: no seed corpus at $seeds" >&2
        failed="$failed $name"
        continue
    fi
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/crashes"
    cp -R "$seeds"/. "$work/corpus"/
    chmod -R u+w "$work/corpus" # dist tarballs ship read-only files
    dict=
    for d in "$srcdir/tests/fuzz/$short.dict" "$srcdir/tests/fuzz/$name.dict"; do
        [ -f "$d" ] && dict="-dict=$d"
    done
    nseeds=$(find "$work/corpus" -type f | wc -l)
    echo "FUZZ $name: $nseeds seeds, ${secs} s ..."
    # stdin from /dev/null: a harness that opens files by name (the ini
    # reader's includes) must never wait on the terminal.
    "$bin" -max_total_time="$secs" -timeout="$timeout_s" -print_final_stats=1 \
        -artifact_prefix="$work/crashes/" $dict "$work/corpus" \
        </dev/null >"$work/log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
    crashes=$(find "$work/crashes" -type f | head -n 5)
    if [ $rc -ne 0 ] || [ -n "$crashes" ] || [ -z "$execs" ]; then
        echo "FUZZ $name: FAILED (exit status $rc) after ${execs:-?} executions" >&2
        grep -E 'ERROR|WARNING: |runtime error|invariant failed|SUMMARY|Test unit written|==[0-9]+==' \
            "$work/log" | head -n 40 >&2
        echo "--- last lines of $work/log:" >&2
        tail -n 30 "$work/log" >&2
        for f in $crashes; do
            echo "FUZZ $name: input kept in $f (replay: $bin $f; after the fix copy it to $seeds/)" >&2
        done
        failed="$failed $name"
        summary="$summary
  $name: FAILED after ${execs:-?} executions"
    else
        corpus_now=$(find "$work/corpus" -type f | wc -l)
        echo "FUZZ $name: $execs executions in $secs s, no crash ($nseeds seeds, $corpus_now corpus entries now)"
        summary="$summary
  $name: $execs executions, ok"
    fi
done

echo "fuzz summary (${secs} s each):$summary"
if [ -n "$failed" ]; then
    echo "FUZZ FAILED:$failed (logs in tests/fuzz/run/*/log)" >&2
    exit 1
fi
exit 0
