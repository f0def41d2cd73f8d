#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (run as root; safe to run repeatedly).
#   user-mode-linux  linux.uml + PPP kernel modules: the guest kernel that runs pppd
#   ppp              /usr/sbin/pppd, the real PPP client (run inside the UML guest)
#   busybox-static   the guest's shell and tools (insmod, ip, ping, stty)
#   iproute2 nftables iputils-ping   host-side network namespace tests
#   freeradius freeradius-utils       a real RADIUS server and radclient for the RADIUS tests
#   libpam-wrapper                    pam_wrapper and pam_matrix: PAM tests without system users
#   libpam0g-dev                      libpam.so to link against (nonstick)
#   tshark                            decodes the pcap files `nasctl capture` writes (tests)
#   systemd                           systemd-analyze verify for the unit file (tests)
#   sip-tester                        sipp, the SIP test driver (the SIP bridge tests)
#   baresip-core                      baresip, a real SIP user agent playing an ATA line (SIP tests)
#   kamailio                          the SIP server nasd's bridge is benchmarked against (sip_bench)
# Nothing is done when every package is already installed.
set -euo pipefail

PACKAGES=(user-mode-linux ppp busybox-static iproute2 nftables iputils-ping freeradius freeradius-utils libpam-wrapper libpam0g-dev tshark systemd sip-tester baresip-core kamailio)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all test packages are installed (${PACKAGES[*]})"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: must run as root (try: sudo $0)" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# --no-remove: fail rather than remove anything already installed.
apt-get install -y --no-install-recommends --no-remove "${PACKAGES[@]}"
