#!/usr/bin/env bash
# Starts the whole AspireAi system: installs what local mode needs, runs the AppHost (dashboard URL printed),
# waits for the gateway and sends it a first request. Arguments go to the AppHost:
#   --infra containers|local|auto   --gateway-port N (default 8080)   --model PATH   --state-dir DIR   --inference-replicas N
#   (--help: what each does)
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  [[ "$arg" == --help || "$arg" == -h ]] && exec dotnet run --project AppHost --launch-profile http -- --help
done

bash tools/prerequisites.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

port=8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ "${args[$i]}" == --gateway-port ]] && port="${args[$((i + 1))]}"
done

dotnet run --project AppHost --launch-profile http -- "$@" &
apphost=$!
# Ctrl+C reaches this script, which stops the AppHost with SIGTERM: a command a script starts with `&` ignores SIGINT
# (no job control), so the AppHost never sees the terminal's; `dotnet run` passes SIGTERM on, and the AppHost stops
# its resources (services, Redis, PostgreSQL) on either.
trap 'kill -TERM $apphost 2>/dev/null; wait $apphost' INT TERM

# The master key: from the environment, else the one the AppHost generated into its user secrets.
secrets="${HOME}/.microsoft/usersecrets/aspireai-apphost-3f1c2d4e/secrets.json"
for _ in $(seq 1 300); do
  if ! kill -0 $apphost 2>/dev/null; then wait $apphost; exit $?; fi
  if curl -fs "http://localhost:${port}/health" >/dev/null 2>&1; then
    key=$(printenv "Parameters__gateway-master-key" || true)
    [[ -z "$key" && -f "$secrets" ]] && key=$(sed -n 's/.*"Parameters:gateway-master-key": *"\([^"]*\)".*/\1/p' "$secrets")
    echo
    model=$(curl -s "http://localhost:${port}/v1/models" -H "Authorization: Bearer ${key}" \
      | grep -o '"id":"[^"]*"' | cut -d'"' -f4 | grep -v -i minilm | head -1)
    body="{\"model\":\"${model}\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":40}"
    echo "── first request ─────────────────────────────────────────────────────────────"
    echo "curl http://localhost:${port}/v1/chat/completions -H \"Authorization: Bearer \$KEY\" -H 'Content-Type: application/json' \\"
    echo "  -d '${body}'"
    curl -s "http://localhost:${port}/v1/chat/completions" -H "Authorization: Bearer ${key}" \
      -H 'Content-Type: application/json' -d "${body}"
    echo
    echo "──────────────────────────────────────────────────────────────────────────────"
    break
  fi
  sleep 1
done
wait $apphost
