#!/usr/bin/env bash
# EMR bootstrap action: install lakelib on this node.
#
#   install-lakelib.sh s3://bucket/prefix/lakelib/0.1.0-<digest>/lakelib-0.1.0-py3-none-any.whl [PYTHON]
#
# - Pinned: installs exactly the wheel named (scripts/submit.sh emr uploads it under a folder named after its
#   content and prints its URI), with --no-deps; PyYAML and boto3 are installed, at the versions pinned below,
#   only when the node's Python cannot import them. PySpark is never installed: EMR provides Spark.
# - Idempotent: a marker named after the wheel's SHA-256 records a finished install; a second run with the same
#   wheel does nothing.
# - Logs every step to stdout and to $LAKELIB_LOG_DIR/install-lakelib.log (/var/log/lakelib by default);
#   any failure stops the script with a non-zero status, which fails the node's bootstrap.
# PYTHON (2nd argument, default python3) is the interpreter Spark runs PySpark with (PYSPARK_PYTHON).
# Test hooks: LAKELIB_LOG_DIR, LAKELIB_STATE_DIR, LAKELIB_PIP_TARGET (pip --target), LAKELIB_SUDO ('' = no sudo).
set -euo pipefail

readonly PYYAML_PIN="PyYAML==6.0.2"
readonly BOTO3_PIN="boto3==1.35.99"

if [[ $# -lt 1 || $# -gt 2 || "$1" != s3://*.whl ]]; then
    echo "usage: install-lakelib.sh s3://.../lakelib-<version>-py3-none-any.whl [PYTHON]" >&2
    exit 2
fi
WHEEL_URI="$1"
PYTHON="${2:-python3}"
LOG_DIR="${LAKELIB_LOG_DIR:-/var/log/lakelib}"
STATE_DIR="${LAKELIB_STATE_DIR:-/var/lib/lakelib}"
PIP_TARGET="${LAKELIB_PIP_TARGET:-}"
if [[ -z "${LAKELIB_SUDO+set}" ]]; then
    if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null; then LAKELIB_SUDO=sudo; else LAKELIB_SUDO=""; fi
fi
SUDO=()
if [[ -n "$LAKELIB_SUDO" ]]; then SUDO=("$LAKELIB_SUDO"); fi

${SUDO[@]+"${SUDO[@]}"} mkdir -p "$LOG_DIR" "$STATE_DIR"
${SUDO[@]+"${SUDO[@]}"} chown "$(id -u):$(id -g)" "$LOG_DIR" "$STATE_DIR"
LOG="$LOG_DIR/install-lakelib.log"

log() {
    printf '%s install-lakelib: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" | tee -a "$LOG"
}
trap 'log "FAILED (line $LINENO, status $?)"' ERR

command -v aws >/dev/null || { log "the aws CLI is not on PATH"; exit 1; }
command -v "$PYTHON" >/dev/null || { log "no $PYTHON on this node"; exit 1; }
log "wheel $WHEEL_URI, python $(command -v "$PYTHON") ($("$PYTHON" -c 'import sys; print(sys.version.split()[0])'))"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
WHEEL="$WORK/${WHEEL_URI##*/}"
aws s3 cp --only-show-errors "$WHEEL_URI" "$WHEEL" 2>&1 | tee -a "$LOG"
SHA="$(sha256sum "$WHEEL" | cut -d' ' -f1)"
MARKER="$STATE_DIR/installed-$SHA"
log "copied $(wc -c <"$WHEEL") bytes, sha256 $SHA"

if [[ -f "$MARKER" ]]; then
    log "already installed ($MARKER); nothing to do"
    exit 0
fi

PIP=("$PYTHON" -m pip install --disable-pip-version-check --no-input)
if [[ -n "$PIP_TARGET" ]]; then PIP+=(--target "$PIP_TARGET"); fi

log "installing ${WHEEL##*/} (--no-deps)"
${SUDO[@]+"${SUDO[@]}"} "${PIP[@]}" --no-deps --force-reinstall "$WHEEL" 2>&1 | tee -a "$LOG"

for pin in "$PYYAML_PIN" "$BOTO3_PIN"; do
    module="yaml"
    if [[ "$pin" == boto3* ]]; then module="boto3"; fi
    if "$PYTHON" -c "import $module" 2>/dev/null; then
        log "$module: found $("$PYTHON" -c "import $module; print($module.__version__)"), kept"
    else
        log "$module: missing, installing $pin"
        ${SUDO[@]+"${SUDO[@]}"} "${PIP[@]}" "$pin" 2>&1 | tee -a "$LOG"
    fi
done

if [[ -n "$PIP_TARGET" ]]; then
    check=(env "PYTHONPATH=$PIP_TARGET" "$PYTHON")
else
    check=("$PYTHON")
fi
VERSION="$("${check[@]}" -c 'import lakelib; print(lakelib.__version__)')"
log "lakelib $VERSION importable"
printf '%s\n' "$WHEEL_URI" >"$MARKER"
log "done"
