#!/usr/bin/env bash
# Runs every test of AspireAi: installs what the tests need (redis-server, PostgreSQL), builds, runs all test projects.
# Extra arguments go to `dotnet test` (e.g. --filter-class or -- --filter-method for xunit's filters).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/prerequisites.sh
export ASPIRE_ALLOW_UNSECURED_TRANSPORT=true
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build AspireAi.sln -c Release -nologo -v quiet
dotnet test --solution AspireAi.sln -c Release --no-build "$@"
