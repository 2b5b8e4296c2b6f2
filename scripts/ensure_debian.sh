#!/usr/bin/env bash
# Installs the Debian packages whose commands are missing: ensure_debian.sh WHAT=PACKAGE ...
# WHAT is a command on PATH (ogr2ogr=gdal-bin), an absolute path to an executable
# (/usr/lib/postgresql/15/bin/initdb=postgresql-15), or py:MODULE, a module python3 must import
# (py:ensurepip=python3-venv: Debian's python3 creates no virtual environment without it), or pkg:NAME, a package
# that must be installed (for what is neither a command nor a module: a GStreamer plugin, a GObject typelib).
# As root with apt-get it installs them; otherwise it says what to install and fails.
set -euo pipefail

missing=()
for pair in "$@"; do
    cmd="${pair%%=*}"
    pkg="${pair#*=}"
    case "$cmd" in
        py:*) python3 -c "import ${cmd#py:}" >/dev/null 2>&1 || missing+=("$pkg") ;;
        pkg:*) [ "$(dpkg-query -W -f='${Status}' "${cmd#pkg:}" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg") ;;
        *) command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing ${missing[*]} with apt-get (once)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
