#!/bin/busybox sh
# PID 1 of the pppd test guest (User-Mode Linux, root fs = the host's "/" via hostfs, read-only).
#
# The host side (netns-tests/support/uml.rs) boots linux.uml with
#   init=<rig dir>/guest-init.sh rig_mode=auto|ctl rig_conf=<rig dir>/rig.conf rig_pppd=<rig dir>/pppd
# Kernel arguments of the form key=value that the kernel does not know end up in our
# environment. They cannot contain spaces, so everything else comes from the rig.conf file,
# which this script sources (it may set PPP_USER PPP_PASS NAS_IP PPPD_OPTS PPPD_EXTRA TEST_CMD
# EXTRA_MODULES PPP_TTY CTL_TTY EXTRA_TTYS).
#
# Guest devices: /dev/ttyS0 = the PPP line (the host NAS is on the other end),
#                /dev/ttyS1 = the control line (ctl mode only), console = the host's stdout pipe.
#
# Modes:
#   auto  start pppd (updetach), then run $TEST_CMD; report "GUEST-RESULT rc=N" on the
#         console, make N the exit status of linux.uml (/proc/exitcode) and power off.
#   ctl   print CTL-READY on the control line, then run each line received there as a shell
#         command and answer with a line "MARK=<exit status>". Helpers for the host:
#         ppp_up [pppd options], ppp_down, rig_finish [rc].
#
# Note: Debian's busybox shell prefers its own applets, so `ping`, `ip` ... in TEST_CMD and ctl
# commands are busybox's; give a full path (/usr/bin/ip) for the host's tools.
B=/bin/busybox
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb

$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B grep -q ' /dev ' /proc/mounts || $B mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1

say() { echo "GUEST[$($B cut -d' ' -f1 /proc/uptime)]: $*"; }
say "init started, mode=${rig_mode:-auto}"

# ---- settings (rig.conf may override any of these) -----------------------------------
PPP_TTY=/dev/ttyS0
CTL_TTY=/dev/ttyS1
EXTRA_TTYS=
PPP_USER=dial
PPP_PASS=dial
NAS_IP=10.0.0.1
# Close to what Debian's pppd does on a plain serial line, minus the host's /etc/ppp/options:
# no modem control lines on a UML serial line, no authentication of the NAS, accept the
# addresses the NAS gives us. Compression, VJ and IPv6CP are left at pppd's defaults.
PPPD_OPTS='115200 local nocrtscts noauth noipdefault ipcp-accept-local ipcp-accept-remote defaultroute maxfail 1 lcp-max-configure 30 debug logfile /dev/console'
PPPD_EXTRA=
TEST_CMD='ping -c 3 -W 3 $NAS_IP'
EXTRA_MODULES=
PPPD=${rig_pppd:-/usr/sbin/pppd}
# Read the config while the host's /tmp (where the rig dir usually is) is still visible.
if [ -n "$rig_conf" ]; then
    . "$rig_conf" || say "WARNING: could not read $rig_conf"
fi
# The guest gets its own tmpfs /tmp below, which hides the host's; keep pppd reachable.
$B mount -t tmpfs -o mode=755 tmpfs /run
$B mkdir -p /run/lock
if [ "$PPPD" != /usr/sbin/pppd ]; then
    $B cp "$PPPD" /run/pppd && $B chmod 755 /run/pppd && PPPD=/run/pppd
fi
$B mount -t tmpfs -o mode=1777 tmpfs /tmp
# Hide the host's /etc/ppp: Debian's options file says "auth crtscts lock modem".
$B mount -t tmpfs -o mode=755 tmpfs /etc/ppp

# ---- kernel modules --------------------------------------------------------------------
# The .ko files ship in the user-mode-linux package; they may be compressed in other builds.
load_module() { # load_module FILE
    case $1 in
        *.ko) $B insmod "$1" ;;
        *.ko.xz) $B xzcat "$1" > /run/mod.ko && $B insmod /run/mod.ko; $B rm -f /run/mod.ko ;;
        *.ko.gz) $B zcat "$1" > /run/mod.ko && $B insmod /run/mod.ko; $B rm -f /run/mod.ko ;;
        *) say "WARNING: cannot load $1 (unknown compression)"; return 1 ;;
    esac
}
load_modules() {
    moddir=/usr/lib/uml/modules/$($B uname -r)
    [ -d "$moddir" ] || { say "WARNING: no module directory $moddir"; return 1; }
    wanted="slhc crc-ccitt ppp_generic ppp_async $EXTRA_MODULES"
    # Locate the files (.ko, or compressed .ko.xz/.ko.gz): modules.dep lists them all and is
    # much cheaper to read than walking the tree; fall back to find without it.
    if [ -r "$moddir/modules.dep" ]; then
        names=$(echo $wanted | $B tr ' ' '|')
        found=$($B grep -oE "^([^:]*/)?($names)\.ko(\.[a-z0-9]+)?:" "$moddir/modules.dep" |
            $B sed "s|^|$moddir/|; s|:\$||")
    else
        set -f
        pattern=
        for m in $wanted; do pattern="$pattern -o -name $m.ko -o -name $m.ko.*"; done
        found=$($B find "$moddir" -type f \( ${pattern# -o } \))
        set +f
    fi
    for m in $wanted; do
        f=
        for c in $found; do
            case ${c##*/} in "$m".ko | "$m".ko.*) f=$c; break ;; esac
        done
        if [ -z "$f" ]; then
            say "WARNING: module $m not found under $moddir"
        elif ! $B grep -q "^$(echo "$m" | $B tr - _) " /proc/modules; then
            load_module "$f" || say "WARNING: insmod $f failed"
        fi
    done
    [ -e /dev/ppp ] || $B mknod /dev/ppp c 108 0
}

write_secrets() {
    : > /etc/ppp/options
    printf '"%s" * "%s" *\n' "$PPP_USER" "$PPP_PASS" > /etc/ppp/pap-secrets
    printf '"%s" * "%s" *\n' "$PPP_USER" "$PPP_PASS" > /etc/ppp/chap-secrets
    $B chmod 600 /etc/ppp/pap-secrets /etc/ppp/chap-secrets
}

# ppp_up [extra pppd options]: returns 0 once IPCP is up, non-zero if pppd gave up.
ppp_up() {
    set -f  # the option words are split but never globbed
    "$PPPD" "$PPP_TTY" $PPPD_OPTS user "$PPP_USER" $PPPD_EXTRA "$@" updetach
    rc=$?
    set +f
    return $rc
}

# ppp_up_lines [extra pppd options]: one pppd per PPP line, all at once: $PPP_TTY as unit 0
# and each tty of $EXTRA_TTYS (rig.conf; the host's GuestOptions::extra_lines) as units 1, 2..
# Prints "PPP-LINE <unit> <tty> rc=<N>" as each pppd comes up or gives up (0 = IPCP up on
# ppp<unit>); returns the number of lines that failed.
ppp_up_lines() {
    : > /run/ppp-lines
    unit=0
    for tty in $PPP_TTY $EXTRA_TTYS; do
        (
            set -f
            "$PPPD" "$tty" $PPPD_OPTS user "$PPP_USER" $PPPD_EXTRA unit $unit "$@" updetach \
                >/dev/null 2>&1 </dev/null
            line="PPP-LINE $unit $tty rc=$?"
            echo "$line" >> /run/ppp-lines
            echo "$line"
        ) &
        unit=$((unit + 1))
    done
    wait
    failed=$($B grep -cv ' rc=0$' /run/ppp-lines 2>/dev/null)
    return "${failed:-0}"
}

# ppp_down: SIGTERM every pppd, wait up to ~4 s for them to end (Terminate-Request
# exchange), then SIGKILL what is left.
ppp_down() {
    $B killall pppd 2>/dev/null || return 0
    n=0
    while $B pidof pppd >/dev/null && [ $n -lt 40 ]; do $B usleep 100000; n=$((n + 1)); done
    $B killall -9 pppd 2>/dev/null
    return 0
}

rig_finish() {
    rc=${1:-0}
    ppp_down
    echo "GUEST-RESULT rc=$rc" > /dev/console
    [ -e /proc/exitcode ] && echo "$rc" > /proc/exitcode
    $B sync
    echo o > /proc/sysrq-trigger
    $B sleep 5
    $B poweroff -f
}

$B ip link set lo up
load_modules
write_secrets
# A test's config may define rig_setup() to write more files (a chat script, pppd options
# files) into the guest's own /etc/ppp or /tmp, which are fresh tmpfs mounts by now.
if command -v rig_setup >/dev/null 2>&1; then
    rig_setup || say "WARNING: rig_setup failed"
fi
say "ready: pppd=$PPPD line=$PPP_TTY modules=$($B cut -d' ' -f1 /proc/modules | $B tr '\n' ' ')"

case "${rig_mode:-auto}" in
ctl)
    # The control tty stays open on fd 9 for the whole boot: closing and reopening it
    # would reset its termios and drop input that arrives in between.
    exec 9<>"$CTL_TTY"
    $B stty raw -echo <&9
    say "control line on $CTL_TTY"
    echo CTL-READY >&9
    while IFS= read -r line <&9; do
        eval "$line" >&9 2>&9 9>&-
        echo "MARK=$?" >&9
    done
    say "control line closed"
    rig_finish 0
    ;;
*)
    say "starting pppd on $PPP_TTY"
    ppp_up
    rc=$?
    say "pppd updetach rc=$rc"
    if [ $rc -eq 0 ]; then
        $B ip -o addr show dev ppp0
        say "running: $TEST_CMD"
        eval "$TEST_CMD"
        rc=$?
        say "TEST_CMD rc=$rc"
    fi
    rig_finish $rc
    ;;
esac
