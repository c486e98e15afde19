#!/usr/bin/env bash
# Run the test suite (called by `make test`). Usage: tools/run_tests.sh PYTHON [SLOW=0|1]
# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
set -uo pipefail
py=${1:-python}; slow=${2:-0}
marker=(-m "not slow"); [ "$slow" = 1 ] && marker=()
"$py" -m pytest tests -q "${marker[@]}" --durations=10
rc=$?
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
