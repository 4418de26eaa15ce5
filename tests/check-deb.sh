#!/bin/sh
# check-deb.sh - build the Debian packages, lint them, install them into a
# scratch root and use them from outside the repository
#
# SYNOPSIS
#   sh tests/check-deb.sh            (.ci/run runs it after the test suite)
#
# DESCRIPTION
#   1. copies the repository's files (tracked and new, not ignored: no build
#      directories) into a scratch folder and runs
#      dpkg-buildpackage -us -uc -b there (debian/: debhelper + meson);
#   2. lintian on the .changes: any error fails (warnings are shown);
#   3. dpkg -x of mtasim and mtasim-dev into a scratch root, then, from a
#      folder outside the repository, with only that root on PATH and
#      PYTHONPATH:
#        - mtasim run on a scenario whose "plugin conn_counter.so" comes
#          from the package's plugin folder, and on one with a plugin
#          named by its bare file name in the working directory;
#        - mtasim report --html-dir and --junit;
#        - man -l on both manual pages; the bash completion completes;
#        - a plugin built against the packaged headers with pkg-config;
#        - pytest-3 folder/: the packaged pytest plugin (pytest11 entry
#          point) collects and runs the folder's .scn files;
#   4. dpkg -i of both packages on this system seen through an overlay (a
#      private mount namespace, chroot; the host is not changed; needs
#      root): man mtasim, mtasim run and pytest-3 suite/ with nothing on
#      PATH or PYTHONPATH, the repository's own suite collects beside the
#      installed plugin, and dpkg -r removes it.
#   Each check prints "ok - what" or "not ok - what"; the last line is
#   "N passed, N failed"; exit status 0 only when all passed.
#
# ENVIRONMENT
#   MTASIM_DEB_KEEP=DIR   build and unpack in DIR and keep it (default: a
#                         temporary folder, removed)
#   DEB_BUILD_OPTIONS     passed on (default "nocheck parallel=2": the unit
#                         suites already ran in tests/run-tests.sh)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh tests/deps.sh || exit 2

if [ -n "${MTASIM_DEB_KEEP:-}" ]; then
    work=$MTASIM_DEB_KEEP
    rm -rf "$work" && mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
passed=0 failed=0
check() {       # check WHAT COMMAND...: run it, count it, show its output on failure
    what=$1; shift
    if out=$("$@" 2>&1); then
        passed=$((passed + 1)); echo "ok - $what"
    else
        failed=$((failed + 1)); echo "not ok - $what"; printf '%s\n' "$out" | tail -n 40 | sed 's/^/    /'
    fi
}

# 1. The source tree, without build directories, and the build.
src=$work/mtasim-0.1.0
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard | \
    (cd "$top" && xargs -0 cp --parents -t "$src" 2>/dev/null)
build_log=$work/build.log
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-nocheck parallel=2}"
check "dpkg-buildpackage -us -uc -b" \
    sh -c "cd '$src' && nice dpkg-buildpackage -us -uc -b >'$build_log' 2>&1 || { tail -n 60 '$build_log'; exit 1; }"
changes=$(ls "$work"/mtasim_*.changes 2>/dev/null | head -n 1)
if [ -z "$changes" ]; then
    echo "0 passed, $((failed + 1)) failed"
    exit 1
fi

# 2. lintian: no errors.
lintian_log=$work/lintian.log
check "lintian: no errors" sh -c "lintian --fail-on error '$changes' >'$lintian_log' 2>&1 || { cat '$lintian_log'; exit 1; }"
sed 's/^/    lintian: /' "$lintian_log"

# 3. Installed into a scratch root.
root=$work/root
mkdir -p "$root"
for deb in "$work"/mtasim_*.deb "$work"/mtasim-dev_*.deb; do
    dpkg -x "$deb" "$root"
done
usr=$root/usr
py=$usr/lib/python3/dist-packages
outside=$work/outside
mkdir -p "$outside/suite/sub"
cat >"$outside/world.inc" <<'SCN'
binding default 192.0.2.1
dns example.com MX 10 mx1.example.com
dns mx1.example.com A 198.51.100.10
SCN
for name in one two; do
    cat >"$outside/suite/$name.scn" <<SCN
scenario $name
include ../world.inc
plugin conn_counter.so
remote 198.51.100.10
inject 1 from <a@sender.test> to <bob@example.com>
expect message 1 delivered
SCN
done
sed -e 's/^scenario one/scenario three/' -e 's|\.\./world.inc|../../world.inc|' \
    -e 's/^plugin conn_counter.so/plugin mine.so/' "$outside/suite/one.scn" >"$outside/suite/sub/three.scn"
cp "$usr"/lib/*/mtasim/plugins/order_a.so "$outside/mine.so"

PATH=$usr/bin:$PATH
PYTHONPATH=$py
export PATH PYTHONPATH
unset MTASIM MTASIM_PLUGIN_PATH MTASIM_REPORTS_DIR
cd "$outside"
check "mtasim is the packaged binary" sh -c "[ \"\$(command -v mtasim)\" = '$usr/bin/mtasim' ]"
check "mtasim run: a packaged plugin by its bare name" \
    sh -c "mtasim run --json r.json --json-trace suite/one.scn | grep -q '^1 passed, 0 failed'"
check "mtasim run --plugin NAME.so from the working directory" \
    sh -c "mtasim run --plugin mine.so:first suite/two.scn | grep -q '^1 passed, 0 failed'"
check "mtasim report --html-dir, --junit" \
    sh -c "mtasim report r.json --html-dir html --junit junit.xml && test -s html/report.css && test -s html/report.js && grep -q 'testcase' junit.xml"
check "man mtasim(1), mtasim-scenario(5)" \
    sh -c "MANWIDTH=80 man -l '$usr/share/man/man1/mtasim.1.gz' | grep -q 'mtasim *- *deterministic' && MANWIDTH=80 man -l '$usr/share/man/man5/mtasim-scenario.5.gz' | grep -q 'scenario language'"
check "bash completion" bash -c ". '$usr/share/bash-completion/completions/mtasim'; COMP_WORDS=(mtasim run --se); COMP_CWORD=2; _mtasim; [ \"\${COMPREPLY[*]}\" = '--seed --seeds' ]"
check "a plugin built against the packaged SDK (pkg-config)" \
    sh -c "PKG_CONFIG_SYSROOT_DIR='$root' PKG_CONFIG_PATH=\$(echo '$usr'/lib/*/pkgconfig) cc -shared -fPIC -Wall -Werror \$(PKG_CONFIG_SYSROOT_DIR='$root' PKG_CONFIG_PATH=\$(echo '$usr'/lib/*/pkgconfig) pkg-config --cflags mtasim) '$usr/share/doc/mtasim/examples/plugins/order.c' -o sdk.so && mtasim run --plugin ./sdk.so suite/two.scn | grep -q '^1 passed'"
check "pytest-3 suite/ collects the .scn files (packaged plugin, entry point)" \
    sh -c "pytest-3 -p no:cacheprovider --collect-only -q suite/ | grep -c '\.scn::' | grep -qx 3"
check "pytest-3 suite/ runs them" \
    sh -c "pytest-3 -p no:cacheprovider -q suite/ | grep -q '3 passed'"

# 4. dpkg -i on this system, seen through an overlay: a private mount
#    namespace puts a writable overlay over / and chroots into it, so the
#    packages install as on a user's machine (maintainer scripts, file
#    placement, dependencies) and vanish afterwards; nothing of the host
#    changes.  Needs root, as .ci/run and tests/deps.sh do.
ovl=$work/overlay
mkdir -p "$ovl/upper" "$ovl/work" "$ovl/merged"
cat >"$work/installed.sh" <<SH
set -e
cd '$outside'
unset PYTHONPATH MTASIM MTASIM_PLUGIN_PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin
dpkg -i '$work'/mtasim_*.deb '$work'/mtasim-dev_*.deb >'$work/dpkg-i.log' 2>&1 || { cat '$work/dpkg-i.log'; exit 1; }
echo "dpkg -i: \$(dpkg-query -W -f='\${Status}' mtasim)"
[ "\$(command -v mtasim)" = /usr/bin/mtasim ]
MANWIDTH=80 man mtasim | grep -q 'mtasim *- *deterministic'
MANWIDTH=80 man 5 mtasim-scenario | grep -q 'scenario language'
mtasim run suite/one.scn | grep -q '^1 passed, 0 failed'
pytest-3 -p no:cacheprovider -q suite/ | grep -q '3 passed'
cd '$src'
MTASIM=/usr/bin/mtasim pytest-3 -p no:cacheprovider --collect-only -q scenarios/dns | grep -q 'tests collected'
dpkg -r mtasim-dev mtasim >/dev/null
[ ! -e /usr/bin/mtasim ]
echo "dpkg -r: removed"
SH
check "dpkg -i on this system (overlay): man mtasim, mtasim run, pytest suite/, the repository's suite beside it, dpkg -r" \
    unshare --mount sh -c "mount -t overlay overlay -o lowerdir=/,upperdir='$ovl/upper',workdir='$ovl/work' '$ovl/merged' && mount -t proc proc '$ovl/merged/proc' && mount --rbind /dev '$ovl/merged/dev' && chroot '$ovl/merged' sh '$work/installed.sh'"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
