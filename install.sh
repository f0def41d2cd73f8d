#!/bin/sh
# install.sh: build and install nasd, its tools, its systemd unit and its configuration.
#
#   sudo ./install.sh                          # build (release) and install under /usr/local
#   sudo ./install.sh --prefix /usr            # ... under /usr
#   ./install.sh --destdir /tmp/pkg --no-build # stage into a tree (packaging, tests)
#
# What goes where ($D is --destdir, empty by default; $P is --prefix, /usr/local):
#
#   $D$P/sbin/nasd, $D$P/sbin/nasd-line        the daemon and the one-line server
#   $D$P/bin/vmodem, $D$P/bin/nasctl           the virtual modem pool, the control tool (if built)
#   $D/etc/systemd/system/nasd.service         the unit, its ExecStart pointing at $P/sbin/nasd
#   $D/etc/pam.d/nasd                          the PAM service (kept if already there)
#   $D$P/share/nasd/nasd.nft                   nasd's nftables rules, for reference
#   $D$P/share/doc/nasd/README.md              the documentation
#   $D/etc/nasd/nasd.toml                      the example configuration, only if there is
#                                              none yet (never overwritten), mode 0640
#   $D/var/lib/nasd                            the accounting journal's directory, mode 0750
#
# Running it again is safe: binaries, unit, rules and documentation are replaced, an
# operator's configuration and PAM file are left alone.
set -eu

usage() {
    cat <<EOF
usage: $0 [--prefix DIR] [--destdir DIR] [--no-build] [--bin-dir DIR]

  --prefix DIR   installation prefix (default /usr/local)
  --destdir DIR  stage everything under DIR instead of / (default: none)
  --no-build     do not run cargo: install the binaries already built
  --bin-dir DIR  where the built binaries are (default: \$CARGO_TARGET_DIR/release,
                 or target/release)
EOF
}

prefix=/usr/local
destdir=
build=yes
bindir=

need_arg() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "$0: $1 needs a value" >&2
        usage >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) need_arg "$@"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --destdir) need_arg "$@"; destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#--destdir=}; shift ;;
        --bin-dir) need_arg "$@"; bindir=$2; shift 2 ;;
        --bin-dir=*) bindir=${1#--bin-dir=}; shift ;;
        --no-build) build=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$0: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

case "$prefix" in
    /*) ;;
    *) echo "$0: --prefix must be an absolute path: $prefix" >&2; exit 2 ;;
esac
prefix=${prefix%/}
# The prefix goes into a sed replacement below: keep it to plain path characters.
case "$prefix" in
    *[!A-Za-z0-9/._+-]*) echo "$0: --prefix has unusual characters: $prefix" >&2; exit 2 ;;
esac
if [ -n "$destdir" ]; then
    case "$destdir" in
        /*) ;;
        *) destdir=$(pwd)/$destdir ;;
    esac
    destdir=${destdir%/}
elif [ "$(id -u)" != 0 ]; then
    echo "$0: installing into / needs root (or use --destdir DIR)" >&2
    exit 1
fi

src=$(cd "$(dirname "$0")" && pwd)
if [ -z "$bindir" ]; then
    bindir=${CARGO_TARGET_DIR:-$src/target}/release
fi

if [ "$build" = yes ]; then
    echo "building: cargo build --release --bins"
    (cd "$src" && cargo build --release --bins)
fi

for b in nasd nasd-line vmodem; do
    if [ ! -x "$bindir/$b" ]; then
        echo "$0: $bindir/$b is missing: build it (cargo build --release --bins) or give --bin-dir" >&2
        exit 1
    fi
done

say() { printf '  %-10s %s\n' "$1" "$2"; }

# install_file MODE SOURCE TARGET: copy, replacing what is there.
install_file() {
    install -D -m "$1" "$2" "$3"
    say installed "$3 (mode $1)"
}

# install_dir MODE DIR: create DIR; an existing one is left as it is.
install_dir() {
    if [ -d "$2" ]; then
        say exists "$2/ (left as it is)"
    else
        install -d -m "$1" "$2"
        say created "$2/ (mode $1)"
    fi
}

# install_once MODE SOURCE TARGET: copy only when TARGET does not exist yet.
install_once() {
    if [ -e "$3" ] || [ -L "$3" ]; then
        if cmp -s "$2" "$3"; then
            say unchanged "$3"
        else
            say kept "$3 (yours, differs from $2: not overwritten)"
        fi
    else
        install -D -m "$1" "$2" "$3"
        say installed "$3 (mode $1)"
    fi
}

echo "installing nasd into ${destdir:-/} with prefix $prefix"

install_file 0755 "$bindir/nasd" "$destdir$prefix/sbin/nasd"
install_file 0755 "$bindir/nasd-line" "$destdir$prefix/sbin/nasd-line"
install_file 0755 "$bindir/vmodem" "$destdir$prefix/bin/vmodem"
if [ -x "$bindir/nasctl" ]; then
    install_file 0755 "$bindir/nasctl" "$destdir$prefix/bin/nasctl"
else
    say skipped "nasctl (not built)"
fi

# The unit names /usr/local: point it at this prefix.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed "s#/usr/local/#$prefix/#g" "$src/systemd/nasd.service" >"$tmp"
install_file 0644 "$tmp" "$destdir/etc/systemd/system/nasd.service"

install_once 0644 "$src/pam.d/nasd" "$destdir/etc/pam.d/nasd"
install_file 0644 "$src/rules/nasd.nft" "$destdir$prefix/share/nasd/nasd.nft"
install_file 0644 "$src/README.md" "$destdir$prefix/share/doc/nasd/README.md"

install_dir 0750 "$destdir/etc/nasd"
install_once 0640 "$src/examples/nasd.toml" "$destdir/etc/nasd/nasd.toml"
install_dir 0750 "$destdir/var/lib/nasd"

if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl daemon-reload
    say reloaded "systemd (systemctl daemon-reload)"
fi

cat <<EOF
done. Next:
  edit /etc/nasd/nasd.toml, then: $prefix/sbin/nasd --config /etc/nasd/nasd.toml --check
  systemctl enable --now nasd
EOF
