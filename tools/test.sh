#!/usr/bin/env bash
# Runs every test of AspireAi: installs what the tests need (redis-server, PostgreSQL), builds, runs all test projects.
# Extra arguments go to `dotnet test` (e.g. --filter-class or -- --filter-method for xunit's filters).
set -euo pipefail
cd "$(dirname "$0")/.."

# The web chat is tested in a real headless Chromium.
ASPIREAI_WITH_BROWSER=1 bash tools/prerequisites.sh
export ASPIRE_ALLOW_UNSECURED_TRANSPORT=true
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build AspireAi.sln -c Release -nologo -v quiet

# A test process that crashes (an access violation, a stack overflow) prints its report in the middle of the run's output,
# and a CI log keeps only the tail: on failure the crash reports are printed again at the end, without the test
# framework's and runtime's frames, so the culprit's frames show.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test --solution AspireAi.sln -c Release --no-build "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ] && grep -q -E 'Fatal error|Stack overflow|Unhandled exception|Process terminated' "$log"; then
  echo "== crash reports of this run (xunit and runtime frames left out) =="
  grep -E -A80 'Fatal error|Stack overflow|Unhandled exception|Process terminated' "$log" \
    | grep -v -E '^ +at (Xunit|System\.(Runtime|Threading|Reflection|RuntimeMethodHandle))' | head -60
fi
exit "$status"
