#!/bin/sh
# Set up a LightSpeed node (lightspeed-proxy + lightspeed-agent) on a fresh Debian or
# Ubuntu machine, from this source tree: Debian packages, build, install, the service
# user, both units enabled and started. It ends with the agent's certificate
# fingerprint and the exact --node line (or [[node]] block) to give the PC's
# controller. It changes no firewall unless asked (--open-firewall), and prints every
# command that changes the system before it runs it.
#
#   sudo deploy/node-setup.sh [--name NAME] [--region REGION] [--public-ip ADDR]
#        [--tunnel-port N] [--control-port N] [--open-firewall] [--build DIR]
#        [--root DIR] [--dry-run]
#
#   --name NAME       the node's name (default: the short host name)
#   --region REGION   its region, shown by the controller (default: none)
#   --public-ip ADDR  the address PCs reach it at (default: the source address of
#                     this machine's default route; behind NAT give the public one)
#   --tunnel-port N   the proxy's UDP port (default 4434)
#   --control-port N  the agent's QUIC port (default 4433)
#   --open-firewall   open both UDP ports with ufw or firewalld when one is active
#                     (default: print which ports to open, open nothing)
#   --build DIR       the build directory (default: build)
#   --root DIR        install into DIR as a staging root (DESTDIR): no packages, no
#                     user, no systemctl, no firewall; says what it would run instead
#   --dry-run         change nothing at all: print what would run
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")

name=$(hostname -s 2>/dev/null || hostname)
region=""
public_ip=""
tunnel_port=4434
control_port=4433
open_fw=0
build=build
root=""
dry=0
PREFIX=${PREFIX:-/usr/local}

die() { echo "node-setup: $*" >&2; exit 1; }
need_arg() { [ $# -ge 2 ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--name) need_arg "$@"; name=$2; shift ;;
	--region) need_arg "$@"; region=$2; shift ;;
	--public-ip) need_arg "$@"; public_ip=$2; shift ;;
	--tunnel-port) need_arg "$@"; tunnel_port=$2; shift ;;
	--control-port) need_arg "$@"; control_port=$2; shift ;;
	--open-firewall) open_fw=1 ;;
	--build) need_arg "$@"; build=$2; shift ;;
	--root) need_arg "$@"; root=$2; shift ;;
	--dry-run) dry=1 ;;
	-h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done

# Names as the agent and the controller accept them (1-31 of A-Z a-z 0-9 . _ -).
valid_name() { printf '%s' "$1" | grep -Eq '^[A-Za-z0-9._-]{1,31}$'; }
valid_name "$name" || die "--name '$name': 1 to 31 characters of A-Z a-z 0-9 . _ -"
[ -z "$region" ] || valid_name "$region" || die "--region '$region': 1 to 31 characters of A-Z a-z 0-9 . _ -"
for p in "$tunnel_port" "$control_port"; do
	case "$p" in ''|*[!0-9]*) die "port '$p': a number from 1 to 65535" ;; esac
	[ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "port '$p': a number from 1 to 65535"
done
[ "$tunnel_port" != "$control_port" ] || die "the tunnel and control ports must differ"
case "$build" in /*) ;; *) build="$src/$build" ;; esac
if [ -n "$root" ]; then
	[ $dry -eq 1 ] || mkdir -p "$root" || die "cannot make $root"
	[ ! -d "$root" ] || root=$(cd "$root" && pwd)
	[ "$root" != / ] || root=""
fi
live=1
[ -n "$root" ] && live=0
if [ $live -eq 1 ] && [ $dry -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
	die "run it as root (sudo $0 ...), or with --dry-run or --root DIR"
fi

# run CMD...: print it, then run it (or only say it with --dry-run).
run() {
	if [ $dry -eq 1 ]; then
		echo "would run: $*"
	else
		echo "+ $*"
		"$@"
	fi
}
# system CMD...: a change to the running system, which a staging root never gets.
system() {
	if [ $live -eq 0 ]; then
		echo "would run (not on a staging root): $*"
	else
		run "$@"
	fi
}

if [ -r /etc/os-release ]; then
	. /etc/os-release
	case "${ID:-} ${ID_LIKE:-}" in
	*debian*|*ubuntu*) ;;
	*) echo "node-setup: warning: ${PRETTY_NAME:-this system} is not Debian or Ubuntu; package names may differ" >&2 ;;
	esac
fi

if [ -z "$public_ip" ]; then
	public_ip=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)
	[ -n "$public_ip" ] || public_ip="PUBLIC-IP"
fi
case "$public_ip" in
10.*|192.168.*|172.1[6-9].*|172.2[0-9].*|172.3[01].*|127.*|PUBLIC-IP)
	echo "node-setup: note: $public_ip is not a public address; PCs need the node's public one (--public-ip)" ;;
esac

echo "== 1/5 Debian packages"
system "$here/install-deps"

echo "== 2/5 build"
run make -C "$src" --no-print-directory "B=$build" all

echo "== 3/5 install (programs, units, the service user, configurations)"
run env DESTDIR="$root" PREFIX="$PREFIX" BUILD="$build" WITH_WEB=0 "$here/install"

etc="$root/etc/lightspeed"
state="$root/var/lib/lightspeed"
agent_toml="$etc/agent.toml"
proxy_toml="$etc/proxy.toml"
# The node's own values go into the configurations only while they are still the
# examples: a file the operator edited is never rewritten.
configure() {
	f=$1 example=$2
	shift 2
	if [ $dry -eq 1 ]; then
		echo "would set in $f (if it is still the example): $*"
		return
	fi
	if cmp -s "$f" "$example"; then
		for kv in "$@"; do
			k=${kv%%=*} v=${kv#*=}
			# The first one only: the commented examples further down stay.
			sed -i "0,/^#\{0,1\} *$k = /s|^#\{0,1\} *$k = .*|$k = $v|" "$f"
			grep -q "^$k = " "$f" || die "$f: no $k line to set"
		done
		echo "  set in $f: $*"
	else
		echo "  $f is yours: left as it is (it should say: $*)"
	fi
}
configure "$agent_toml" "$here/config/agent.toml" "node_id=\"$name\"" "region=\"$region\"" \
	"listen=\"0.0.0.0:$control_port\"" "data_port=$tunnel_port"
configure "$proxy_toml" "$here/config/proxy.toml" "bind=\"0.0.0.0:$tunnel_port\""

echo "== 4/5 the agent's certificate"
fp=""
if [ $dry -eq 1 ]; then
	echo "would run: $root$PREFIX/bin/lightspeed-agent -c $agent_toml --state-dir $state --fingerprint"
else
	install -d -m 0700 "$state"
	fp=$("$root$PREFIX/bin/lightspeed-agent" -c "$agent_toml" --state-dir "$state" --fingerprint)
	# Made as root: the service user must own it (systemd would fix the owner too).
	if [ $live -eq 1 ] && getent passwd lightspeed >/dev/null 2>&1; then
		chown -R lightspeed:lightspeed "$state"
	fi
	echo "  certificate $fp ($state/agent.crt)"
fi

echo "== 5/5 services"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	system systemctl daemon-reload
	system systemctl enable --now lightspeed-proxy.service lightspeed-agent.service
else
	echo "systemctl not found (or systemd not running); would run:"
	echo "  systemctl daemon-reload"
	echo "  systemctl enable --now lightspeed-proxy.service lightspeed-agent.service"
fi

echo "== firewall"
opened=""
if [ $open_fw -eq 1 ]; then
	if command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | grep -q "Status: active"; then
		system ufw allow "$tunnel_port/udp"
		system ufw allow "$control_port/udp"
		opened="ufw: $tunnel_port/udp, $control_port/udp"
	elif command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; then
		system firewall-cmd --permanent --add-port="$tunnel_port/udp" --add-port="$control_port/udp"
		system firewall-cmd --reload
		opened="firewalld: $tunnel_port/udp, $control_port/udp"
	else
		echo "  no active ufw or firewalld: nothing opened"
	fi
fi
if [ -n "$opened" ]; then
	echo "  $opened: the commands above"
else
	echo "  nothing was opened. PCs must reach UDP $tunnel_port (tunnel) and UDP $control_port (QUIC control);"
	echo "  allow them in the firewall and the provider's security group, e.g.  ufw allow $tunnel_port/udp && ufw allow $control_port/udp"
fi
echo "  /health and /metrics stay on 127.0.0.1:8080 (the agent's http)."

shown_fp=${fp:-sha256:FINGERPRINT}
echo
if [ $dry -eq 1 ]; then echo "Node $name: dry run, nothing was changed."; else echo "Node $name is set up."; fi
echo "certificate fingerprint: $shown_fp"
[ -n "$fp" ] || echo "  (the dry run made no certificate: lightspeed-agent --fingerprint prints it once installed)"
echo
echo "On the PC, give the controller this node, either on its command line:"
echo
echo "  --node $name=$public_ip:$tunnel_port,control=$control_port,fingerprint=$shown_fp"
echo
echo "or in /etc/lightspeed/controller.toml:"
echo
echo "[[node]]"
echo "name = \"$name\""
echo "address = \"$public_ip:$tunnel_port\""
echo "control_port = $control_port"
echo "fingerprint = \"$shown_fp\""
[ -z "$region" ] || echo "region = \"$region\""
