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
#   MTASIM_DEPS_REPLACE_MTA=1      install postfix even where another
#                                  mail-transport-agent (exim4, ...) is
#                                  installed, which it then replaces
#
# When sourced, the script runs in a subshell so that its "exit" cannot end
# the caller's shell; the caller sees the status in $?.

MTASIM_DEB_PACKAGES="meson ninja-build pkg-config gcc libc6-dev check libjansson-dev
libssl-dev libpcap-dev python3 python3-pytest python3-pytest-xdist"
# MQ_Json hands MailerQ plugins a json-c object; its example plugin
# (fixtures/plugins/mq_json.c) is built against json-c.
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES libjson-c-dev"
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
# STARTTLS against mtasim serve (tests/drivers/test_serve.py, docs/tls.md):
# swaks --tls needs Net::SSLeay (only a Recommends of swaks, which
# --no-install-recommends leaves out), and "openssl s_client -starttls smtp"
# is the openssl package's tool (libssl-dev does not bring it).
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES libnet-ssleay-perl openssl"
# Differential fidelity (tests/fidelity/, docs/fidelity.md): a real MTA,
# Postfix, delivers through mtasim serve as the reference SMTP client.  It
# is installed unconfigured (debconf "No configuration" below): no system
# main.cf, no daemon started; the tests run a private instance of their own.
# It conflicts with every other mail-transport-agent (exim4, sendmail-bin,
# nullmailer, ...), none of which mtasim needs.
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES postfix"
# The man pages are generated from docs/ by pandoc (man/meson.build); the
# bash completion is checked with bash-completion's helpers loaded
# (tests/drivers/test_install.py).
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES pandoc bash-completion"
# The Debian package (debian/) is built and checked by tests/deb/check-deb.sh
# (.ci/run): dpkg-buildpackage needs debhelper (dpkg-dev, fakeroot come
# with it), lintian checks the result.
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES debhelper lintian"
# The libFuzzer targets (tests/fuzz/, docs/reliability.md; CI runs a smoke of
# each): clang, and libclang-rt-14-dev for libFuzzer and clang's sanitizer
# runtimes.  Only the -Dfuzz=true build uses them; the default build is gcc's.
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES clang libclang-rt-14-dev"
# valgrind: the "meson test --setup valgrind" of tests/meson.build (the setup
# exists only when valgrind is found; docs/reliability.md).
MTASIM_DEB_PACKAGES="$MTASIM_DEB_PACKAGES valgrind"

# shellcheck disable=SC2086  # word splitting of the package lists is intended
(
    # One dpkg-query for every package (one process each took seconds on a
    # loaded machine, and build.sh runs this on every build).
    # shellcheck disable=SC2086  # one argument per package
    installed=$(dpkg-query -W -f='${Status} ${Package}\n' $MTASIM_DEB_PACKAGES \
                    ${MTASIM_DEPS_EXTRA:-} 2>/dev/null \
                | awk '$1 == "install" && $2 == "ok" && $3 == "installed" { print $4 }')
    missing=""
    for pkg in $MTASIM_DEB_PACKAGES ${MTASIM_DEPS_EXTRA:-}; do
        case "
$installed
" in
            *"
$pkg
"*) ;;
            *) missing="${missing:+$missing }$pkg" ;;
        esac
    done
    [ -z "$missing" ] && exit 0

    # Postfix replaces any other mail-transport-agent (they conflict).  On a
    # machine that has one, keep it: leave postfix out and say so (the
    # fidelity tests then fail, naming this); MTASIM_DEPS_REPLACE_MTA=1
    # lets apt-get replace it.
    case " $missing " in
    *" postfix "*)
        mta=$(dpkg-query -W -f='${Status} ${Package} ${Provides}\n' 2>/dev/null \
              | awk '$1 == "install" && $3 == "installed" && $4 != "postfix" \
                     && / mail-transport-agent/ { print $4 }' | head -n 1)
        if [ -n "$mta" ] && [ "${MTASIM_DEPS_REPLACE_MTA:-0}" != 1 ]; then
            echo "mtasim: not installing postfix: it would replace $mta (the" \
                 "fidelity tests need it; MTASIM_DEPS_REPLACE_MTA=1 allows that)" >&2
            missing=$(printf '%s\n' $missing | grep -vx postfix | tr '\n' ' ')
            missing=${missing% }
            [ -z "$missing" ] && exit 0
        fi
        ;;
    esac

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
    # postfix asks which mail configuration to write: none (the fidelity
    # tests configure their own instance; the system's stays off).
    printf '%s\n' \
        'wireshark-common wireshark-common/install-setuid boolean false' \
        'postfix postfix/main_mailer_type select No configuration' \
        | debconf-set-selections 2>/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing || exit 2
)
