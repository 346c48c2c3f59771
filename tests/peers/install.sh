#!/usr/bin/env bash
# Installs the real peers the API tests talk to, from the registries, into the build directory:
#   - aiosmtpd (PyPI), the SMTP server the mail tests start and read: a venv at
#     $CARGO_TARGET_DIR/peers/venv (target/peers/venv by default).
# Idempotent: a peer already installed at the pinned version is kept. A peer that cannot be
# installed fails the script, saying why; the tests then fail too (they never skip).
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${CARGO_TARGET_DIR:-target}"
peers="$target/peers"
mkdir -p "$peers"

AIOSMTPD_VERSION=1.4.6
venv="$peers/venv"
if ! "$venv/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
    if ! command -v python3 >/dev/null; then
        echo "tests/peers/install.sh: python3 is missing (apt-get install python3 python3-venv)" >&2
        exit 1
    fi
    rm -rf "$venv"
    if ! python3 -m venv "$venv"; then
        echo "tests/peers/install.sh: python3 cannot make a venv (apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi
echo "peers: aiosmtpd $AIOSMTPD_VERSION in $venv"
