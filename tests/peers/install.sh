#!/usr/bin/env bash
# Installs the real peers the API tests talk to, from the registries, into the build directory:
#   - aiosmtpd (PyPI), the SMTP server the mail tests start and read: a venv at
#     $CARGO_TARGET_DIR/peers/venv (target/peers/venv by default);
#   - oidc-provider (npm), the OpenID provider the single sign-on tests start
#     (tests/peers/oidc/provider.mjs), run with Node: `npm ci` into tests/peers/oidc/node_modules
#     (git-ignored), from the committed package-lock.json; Debian's nodejs when node is missing;
#   - slapd (Debian), the LDAP directory the directory tests start on a throwaway database.
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

apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "tests/peers/install.sh: $* missing and no apt-get to install it" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq "$@" >/dev/null; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq "$@" >/dev/null || {
            echo "tests/peers/install.sh: apt-get could not install $*" >&2
            exit 1
        }
    fi
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi
oidc="tests/peers/oidc"
if ! (cd "$oidc" && npm ls --silent oidc-provider jose >/dev/null 2>&1); then
    (cd "$oidc" && npm ci --silent --no-audit --no-fund) || {
        echo "tests/peers/install.sh: npm could not install oidc-provider into $oidc" >&2
        exit 1
    }
fi
echo "peers: oidc-provider $(cd "$oidc" && node -p 'require("oidc-provider/package.json").version') with node $(node --version)"

if [ ! -x /usr/sbin/slapd ] || ! command -v slapadd >/dev/null; then
    # slapd's package asks for a domain and an admin password: the tests make their own
    # directory, so the answers do not matter.
    apt_install slapd ldap-utils
fi
echo "peers: $(/usr/sbin/slapd -VV 2>&1 | head -1 | sed 's/^@(#) \$//; s/\$$//' | tr -s ' ')"
