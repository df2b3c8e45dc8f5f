#!/usr/bin/env bash
# Installs what AspireAi's local mode and its tests need and this machine lacks: redis-server and PostgreSQL
# and bubblewrap (the agents' code sandbox) and ICU (Inference's Unicode normalization), plus Chromium for the web-chat browser tests when ASPIREAI_WITH_BROWSER=1. Uses apt-get as root, or through sudo where allowed; otherwise
# says exactly what to install. Safe to run again: present packages are left alone.
set -uo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# The agents' run_code sandbox; without it the tool refuses to run code (never an unsandboxed fallback).
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
# ICU: Inference's tokenizers apply Unicode normalization (NFC) through it; .NET finds it as libicu*.so.
if ! compgen -G '/usr/lib/*/libicuuc.so.*' >/dev/null && ! compgen -G '/usr/lib/libicuuc.so.*' >/dev/null; then
  need+=(libicu72)
fi
if [[ "${ASPIREAI_WITH_BROWSER:-0}" == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi

if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi

echo "prerequisites: installing ${need[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "prerequisites: cannot install ${need[*]} (not root and no password-less sudo)." >&2
  echo "prerequisites: run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "prerequisites: no apt-get on this machine; install ${need[*]} with your package manager." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >/tmp/aspireai-apt.log 2>&1; then
  # A fresh machine's package lists may be empty or stale.
  "${sudo[@]}" apt-get update >>/tmp/aspireai-apt.log 2>&1
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >>/tmp/aspireai-apt.log 2>&1; then
    echo "prerequisites: apt-get could not install ${need[*]}; see /tmp/aspireai-apt.log" >&2
    tail -5 /tmp/aspireai-apt.log >&2
    exit 1
  fi
fi
# Debian's postgresql package starts a cluster of its own as a service; AspireAi runs its own server and needs none.
echo "prerequisites: installed ${need[*]}"
