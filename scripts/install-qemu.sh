#!/bin/sh
# Installs Debian packages (QEMU for the firmware tests, the C firmware's
# toolchain) without removing any installed package. Usage (as root):
# scripts/install-qemu.sh PACKAGE...
#
# If plain apt-get would have to remove a package, the usual cause is a
# newer QEMU already installed from backports (for example qemu-utils from
# bookworm-backports, which the release's qemu-system-arm conflicts with):
# then the same packages are taken from that backports suite, which is
# added as an apt source if missing. If apt still wants to remove
# something, nothing is changed and the command to run by hand is printed.
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 PACKAGE..." >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
install() {
  apt-get install -y -qq --no-install-recommends --no-remove "$@"
}
apt-get update -qq
if apt-get install -s --no-install-recommends "$@" 2>/dev/null | grep -q '^Remv '; then
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  if [ -n "$codename" ] && dpkg-query -W -f '${Version}\n' 'qemu*' 2>/dev/null | grep -q '~bpo'; then
    list=/etc/apt/sources.list.d/tinygen-$codename-backports.sources
    if ! apt-cache policy 2>/dev/null | grep -q "$codename-backports"; then
      echo "installed QEMU packages come from $codename-backports: adding it as $list"
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$codename" > "$list"
      apt-get update -qq
    fi
    if ! apt-get install -s --no-install-recommends -t "$codename-backports" "$@" 2>/dev/null | grep -q '^Remv '; then
      install -t "$codename-backports" "$@"
      exit 0
    fi
  fi
  echo "apt-get would remove packages to install $*; nothing was changed." >&2
  echo "Check what it proposes and install by hand: apt-get install --no-install-recommends $*" >&2
  exit 1
fi
install "$@"
