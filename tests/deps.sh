#!/bin/sh
# deps.sh - make sure the Debian packages mtasim needs are installed
#
# SYNOPSIS
#   sh tests/deps.sh        (or: . tests/deps.sh)
#
# DESCRIPTION
#   MTASIM_DEB_PACKAGES lists every Debian package needed to build and test
#   mtasim; add new build or test dependencies there.
#   All installed: silent, exit status 0.
#   Some missing, running as root: "apt-get update" once, then installs them.
#   Some missing, not root: says which on stderr and exits with status 2.
#
# ENVIRONMENT (for testing this script)
#   MTASIM_DEPS_ASSUME_NONROOT=1   behave as if not root
#   MTASIM_DEPS_EXTRA="pkg ..."    also require these packages
#
# When sourced, the script runs in a subshell so that its "exit" cannot end
# the caller's shell; the caller sees the status in $?.

MTASIM_DEB_PACKAGES="meson ninja-build pkg-config gcc libc6-dev check libjansson-dev
libssl-dev libpcap-dev python3 python3-pytest python3-pytest-xdist"
# tshark and its sharkd (wireshark-common, a dependency of tshark) judge the
# packet captures of --pcap (tests/drivers/test_pcap.py).
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES tshark"
# The HTML report (mtasim report --html) is checked in a real, headless
# browser by tests/drivers/test_reports.py.
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES chromium"
# Plugins read virtual time through libfaketime's LD_PRELOAD (docs/faketime.md).
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES libfaketime"
# Live mode is checked against real SMTP software on loopback
# (tests/drivers/test_live.py, docs/live.md): an SMTP server (aiosmtpd), an
# SMTP client (swaks) and a client library (libESMTP, its event callback).
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES python3-aiosmtpd swaks libesmtp-dev"

# shellcheck disable=SC2086  # word splitting of the package lists is intended
(
    missing=""
    for pkg in $MTASIM_DEB_PACKAGES ${MTASIM_DEPS_EXTRA:-}; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)
        if [ "$status" != "install ok installed" ]; then
            missing="${missing:+$missing }$pkg"
        fi
    done
    [ -z "$missing" ] && exit 0

    uid=$(id -u)
    if [ "${MTASIM_DEPS_ASSUME_NONROOT:-0}" = 1 ]; then
        uid=1
    fi
    if [ "$uid" -ne 0 ]; then
        echo "mtasim needs these Debian packages: $missing" >&2
        echo "run as root: apt-get install -y $missing" >&2
        exit 2
    fi
    apt-get update -qq >/dev/null || exit 2
    # tshark (wireshark-common) asks whether non-root users may capture:
    # answer no beforehand, so that the install never waits for a question.
    echo 'wireshark-common wireshark-common/install-setuid boolean false' \
        | debconf-set-selections 2>/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing || exit 2
)
