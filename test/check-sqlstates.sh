#!/usr/bin/env bash
# Every SQLSTATE of the README's error table ("## Errors": rows "| `XXXXX` name | ...") must be
# asserted by the regression suite: it must appear in some expected/*.out, followed by ": ", as
# an error, warning or notice shown with VERBOSITY verbose ("ERROR:  XXXXX: ...") or a caught
# error's state a test prints ("XXXXX: message"). Prints the codes no expected output shows; exits 1 if any,
# 2 when the table cannot be read. Needs nothing but the repository (no cluster, no stack).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
README="$ROOT/README.md"
codes=$(awk '/^## Errors/ { on = 1; next } /^## / { on = 0 } on' "$README" |
    grep -o '^| `[0-9A-Z]\{5\}`' | tr -d '|` ' | sort -u)
if [ -z "$codes" ]; then
    echo "no error table found under \"## Errors\" in $README" >&2
    exit 2
fi
missing=0 total=0
for code in $codes; do
    total=$((total + 1))
    if ! grep -q -E "(^|[ \"(])$code: " "$ROOT"/expected/*.out; then
        echo "SQLSTATE $code of the README's error table appears in no expected output"
        missing=$((missing + 1))
    fi
done
echo "SQLSTATEs of the README's error table: $total, asserted: $((total - missing)), missing: $missing"
[ "$missing" -eq 0 ]
