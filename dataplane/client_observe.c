/* lightspeed-client --observe (see client_observe.h): libpcap loaded on demand, a
 * capture filter built from the profile's ports, per-server counters, the game's own
 * sockets told apart through /proc, and a report as text or JSON. */
#include "client_observe.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "addr.h"
#include "util.h"

#define PROG "lightspeed-client"

/* ---- libpcap, loaded on first use --------------------------------------------------- */

static struct {
	__typeof__(&pcap_create) create;
	__typeof__(&pcap_set_snaplen) set_snaplen;
	__typeof__(&pcap_set_promisc) set_promisc;
	__typeof__(&pcap_set_timeout) set_timeout;
	__typeof__(&pcap_set_immediate_mode) set_immediate_mode;
	__typeof__(&pcap_activate) activate;
	__typeof__(&pcap_compile) compile;
	__typeof__(&pcap_setfilter) setfilter;
	__typeof__(&pcap_freecode) freecode;
	__typeof__(&pcap_setnonblock) setnonblock;
	__typeof__(&pcap_get_selectable_fd) get_selectable_fd;
	__typeof__(&pcap_dispatch) dispatch;
	__typeof__(&pcap_datalink) datalink;
	__typeof__(&pcap_geterr) geterr;
	__typeof__(&pcap_stats) stats;
	__typeof__(&pcap_close) close;
} pc;

static int pcap_load(char *err, size_t errlen)
{
	static const char *const names[] = { "libpcap.so.0.8", "libpcap.so.1", "libpcap.so" };
	void *h = NULL;

	for (size_t i = 0; i < LS_ARRAY_LEN(names) && !h; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "observe mode needs libpcap (Debian: apt-get install libpcap0.8): %s",
			 dlerror());
		return -1;
	}
#define L(field, sym)                                                   \
	do {                                                            \
		*(void **)&pc.field = dlsym(h, #sym);                   \
		if (!pc.field) {                                        \
			snprintf(err, errlen, "libpcap lacks %s", #sym); \
			dlclose(h);                                     \
			return -1;                                      \
		}                                                       \
	} while (0)
	L(create, pcap_create);
	L(set_snaplen, pcap_set_snaplen);
	L(set_promisc, pcap_set_promisc);
	L(set_timeout, pcap_set_timeout);
	L(set_immediate_mode, pcap_set_immediate_mode);
	L(activate, pcap_activate);
	L(compile, pcap_compile);
	L(setfilter, pcap_setfilter);
	L(freecode, pcap_freecode);
	L(setnonblock, pcap_setnonblock);
	L(get_selectable_fd, pcap_get_selectable_fd);
	L(dispatch, pcap_dispatch);
	L(datalink, pcap_datalink);
	L(geterr, pcap_geterr);
	L(stats, pcap_stats);
	L(close, pcap_close);
#undef L
	return 0;
}

/* ---- accounting ---------------------------------------------------------------------- */

static bool in_ranges(const struct client_observe *o, uint16_t port)
{
	for (size_t i = 0; i < o->nports; i++)
		if (port >= o->ports[i].lo && port <= o->ports[i].hi)
			return true;
	return false;
}

static bool is_local(const struct client_observe *o, uint32_t ip)
{
	for (size_t i = 0; i < o->nlocal; i++)
		if (o->local[i] == ip)
			return true;
	return false;
}

static void dir_add(struct client_observe_dir *d, size_t len)
{
	if (d->packets == 0 || len < d->min)
		d->min = (uint32_t)len;
	if (len > d->max)
		d->max = (uint32_t)len;
	d->packets++;
	d->bytes += len;
}

void client_observe_account(struct client_observe *o, uint32_t src, uint16_t sport, uint32_t dst,
			    uint16_t dport, size_t payload, uint64_t now_us)
{
	bool up;
	uint32_t rip;
	uint16_t rport, lport;
	struct client_observe_server *s = NULL;

	/* The server is the end that is not this machine, on one of the ports. */
	if (is_local(o, src) && !is_local(o, dst))
		up = true;
	else if (is_local(o, dst) && !is_local(o, src))
		up = false;
	else
		return;
	rip = up ? dst : src;
	rport = up ? dport : sport;
	lport = up ? sport : dport;
	if (!in_ranges(o, rport))
		return;
	for (size_t i = 0; i < o->n && !s; i++)
		if (o->s[i].ip == rip && o->s[i].port == rport && o->s[i].local_port == lport)
			s = &o->s[i];
	if (!s) {
		if (o->n == CL_OBSERVE_MAX_SERVERS) {
			o->dropped_servers++;
			return;
		}
		s = &o->s[o->n++];
		memset(s, 0, sizeof(*s));
		s->ip = rip;
		s->port = rport;
		s->local_port = lport;
		s->first_us = now_us;
		s->game = -1;
	}
	if (o->game_known) {
		bool mine = false;
		for (size_t i = 0; i < o->ngame_ports && !mine; i++)
			mine = o->game_ports[i] == lport;
		/* Once seen as the game's, a flow stays the game's (its socket may close first). */
		if (mine || s->game != 1)
			s->game = mine ? 1 : 0;
	}
	s->last_us = now_us;
	dir_add(up ? &s->up : &s->down, payload);
}

/* ---- the machine ---------------------------------------------------------------------- */

static void load_local_addrs(struct client_observe *o)
{
	struct ifaddrs *ifa, *i;

	o->nlocal = 0;
	if (getifaddrs(&ifa) < 0)
		return;
	for (i = ifa; i && o->nlocal < LS_ARRAY_LEN(o->local); i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			o->local[o->nlocal++] = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
	freeifaddrs(ifa);
}

/* The local UDP ports of pid's sockets: its socket inodes, found in its udp table. */
static void load_game_ports(struct client_observe *o, pid_t pid)
{
	char path[64], link[64], line[512];
	unsigned long inodes[256];
	size_t ni = 0;
	struct dirent *de;
	DIR *d;
	FILE *f;

	o->ngame_ports = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d) {
		o->game_known = false;
		return;
	}
	while ((de = readdir(d)) != NULL && ni < LS_ARRAY_LEN(inodes)) {
		char fdp[320];
		ssize_t n;
		snprintf(fdp, sizeof(fdp), "%s/%s", path, de->d_name);
		n = readlink(fdp, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%lu]", &inodes[ni]) == 1)
			ni++;
	}
	closedir(d);
	snprintf(path, sizeof(path), "/proc/%d/net/udp", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f) && o->ngame_ports < LS_ARRAY_LEN(o->game_ports)) {
		unsigned lport;
		unsigned long inode;
		if (sscanf(line, " %*d: %*8x:%4x %*8x:%*4x %*x %*x:%*x %*x:%*x %*x %*u %*u %lu",
			   &lport, &inode) != 2)
			continue;
		for (size_t i = 0; i < ni; i++)
			if (inodes[i] == inode)
				o->game_ports[o->ngame_ports++] = (uint16_t)lport;
	}
	if (f)
		fclose(f);
	o->game_known = true;
}

/* ---- packets --------------------------------------------------------------------------- */

struct capture {
	struct client_observe *o;
	int linktype;
	bool json;
};

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct capture *c = (struct capture *)user;
	size_t off, caplen = h->caplen;
	uint16_t proto = 0;
	const u_char *ip;
	size_t ihl;
	uint16_t sport, dport, ulen;
	uint32_t src, dst;

	switch (c->linktype) {
	case DLT_LINUX_SLL: /* 16 bytes, protocol at 14 */
		if (caplen < 16)
			return;
		proto = (uint16_t)(bytes[14] << 8 | bytes[15]);
		off = 16;
		break;
	case DLT_LINUX_SLL2: /* 20 bytes, protocol at 0 */
		if (caplen < 20)
			return;
		proto = (uint16_t)(bytes[0] << 8 | bytes[1]);
		off = 20;
		break;
	case DLT_EN10MB:
		if (caplen < 14)
			return;
		proto = (uint16_t)(bytes[12] << 8 | bytes[13]);
		off = 14;
		if (proto == 0x8100 && caplen >= 18) {
			proto = (uint16_t)(bytes[16] << 8 | bytes[17]);
			off = 18;
		}
		break;
	case DLT_RAW:
		proto = 0x0800;
		off = 0;
		break;
	default:
		return;
	}
	if (proto != 0x0800 || caplen < off + 20)
		return;
	ip = bytes + off;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != IPPROTO_UDP || caplen < off + ihl + 8)
		return;
	/* A later fragment has no UDP header. */
	if (((ip[6] & 0x1f) << 8 | ip[7]) != 0)
		return;
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	sport = (uint16_t)(ip[ihl] << 8 | ip[ihl + 1]);
	dport = (uint16_t)(ip[ihl + 2] << 8 | ip[ihl + 3]);
	ulen = (uint16_t)(ip[ihl + 4] << 8 | ip[ihl + 5]);
	if (ulen < 8)
		return;
	size_t before = c->o->n;
	client_observe_account(c->o, src, sport, dst, dport, (size_t)ulen - 8, ls_now_us());
	if (c->o->n > before && !c->json) {
		const struct client_observe_server *s = &c->o->s[c->o->n - 1];
		char a[LS_ADDRSTRLEN];
		printf("new server %s (local port %u%s)\n", ls_ipport_fmt(ntohl(s->ip), s->port, a),
		       s->local_port, s->game == 1 ? ", the game" : s->game == 0 ? ", another process" : "");
		fflush(stdout);
	}
}

/* ---- the report ---------------------------------------------------------------------- */

static double per_s(uint64_t n, const struct client_observe_server *s)
{
	double secs = (double)(s->last_us - s->first_us) / 1e6;

	return secs < 1 ? (double)n : (double)n / secs;
}

static json_t *dir_json(const struct client_observe_dir *d, const struct client_observe_server *s)
{
	return json_pack("{s:I,s:I,s:f,s:I,s:I,s:I}", "packets", (json_int_t)d->packets, "bytes",
			 (json_int_t)d->bytes, "pps", per_s(d->packets, s), "size_min",
			 (json_int_t)d->min, "size_max", (json_int_t)d->max, "size_avg",
			 (json_int_t)(d->packets ? d->bytes / d->packets : 0));
}

/* What a profile would say, from the game's flows (all flows when the game is unknown). */
struct suggestion {
	uint16_t port_lo, port_hi;
	double pps;
	uint32_t size_min, size_max;
	bool any;
};

static void suggest(const struct client_observe *o, struct suggestion *sg)
{
	memset(sg, 0, sizeof(*sg));
	for (size_t i = 0; i < o->n; i++) {
		const struct client_observe_server *s = &o->s[i];
		if (s->game == 0)
			continue;
		double pps = per_s(s->up.packets, s);
		uint32_t mn = s->up.min, mx = s->up.max;
		if (s->down.packets) {
			mn = s->up.packets ? (s->down.min < mn ? s->down.min : mn) : s->down.min;
			mx = s->down.max > mx ? s->down.max : mx;
		}
		if (!sg->any || s->port < sg->port_lo)
			sg->port_lo = s->port;
		if (!sg->any || s->port > sg->port_hi)
			sg->port_hi = s->port;
		if (!sg->any || mn < sg->size_min)
			sg->size_min = mn;
		if (mx > sg->size_max)
			sg->size_max = mx;
		if (pps > sg->pps)
			sg->pps = pps;
		sg->any = true;
	}
}

static void report(const struct client_observe *o, const char *ifname, const char *game,
		   pid_t pid, bool json)
{
	double secs = (double)(ls_now_us() - o->started_us) / 1e6;
	struct suggestion sg;
	char a[LS_ADDRSTRLEN];

	suggest(o, &sg);
	if (json) {
		json_t *r = json_object(), *arr = json_array();
		for (size_t i = 0; i < o->n; i++) {
			const struct client_observe_server *s = &o->s[i];
			json_array_append_new(
				arr, json_pack("{s:s,s:i,s:o,s:o,s:o}", "server",
					       ls_ipport_fmt(ntohl(s->ip), s->port, a), "local_port",
					       s->local_port, "game",
					       s->game < 0 ? json_null() : json_boolean(s->game),
					       "up", dir_json(&s->up, s), "down", dir_json(&s->down, s)));
		}
		json_object_set_new(r, "seconds", json_real(secs));
		json_object_set_new(r, "interface", json_string(ifname));
		json_object_set_new(r, "game", game ? json_string(game) : json_null());
		json_object_set_new(r, "pid", pid > 0 ? json_integer(pid) : json_null());
		json_object_set_new(r, "servers", arr);
		json_object_set_new(r, "servers_not_kept", json_integer((json_int_t)o->dropped_servers));
		if (sg.any) {
			char range[16];
			if (sg.port_lo == sg.port_hi)
				snprintf(range, sizeof(range), "%u", sg.port_lo);
			else
				snprintf(range, sizeof(range), "%u-%u", sg.port_lo, sg.port_hi);
			json_object_set_new(r, "suggested",
					    json_pack("{s:[s],s:i,s:i,s:i}", "ports", range, "pps",
						      (int)(sg.pps + 0.5), "size_min", sg.size_min,
						      "size_max", sg.size_max));
		} else {
			json_object_set_new(r, "suggested", json_null());
		}
		char *text = json_dumps(r, JSON_COMPACT);
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(r);
		return;
	}
	printf("\nafter %.1f s on %s%s%s:\n", secs, ifname, game ? ", game " : "", game ? game : "");
	printf("%-22s %-7s %8s %15s %9s %15s\n", "server", "socket", "up pps", "up min/avg/max",
	       "down pps", "down min/avg/max");
	for (size_t i = 0; i < o->n; i++) {
		const struct client_observe_server *s = &o->s[i];
		char up[32], down[32];
		snprintf(up, sizeof(up), "%u/%llu/%u", s->up.min,
			 (unsigned long long)(s->up.packets ? s->up.bytes / s->up.packets : 0), s->up.max);
		snprintf(down, sizeof(down), "%u/%llu/%u", s->down.min,
			 (unsigned long long)(s->down.packets ? s->down.bytes / s->down.packets : 0),
			 s->down.max);
		printf("%-22s %-7s %8.1f %15s %9.1f %15s\n", ls_ipport_fmt(ntohl(s->ip), s->port, a),
		       s->game == 1 ? "game" : s->game == 0 ? "other" : "?", per_s(s->up.packets, s), up,
		       per_s(s->down.packets, s), down);
	}
	if (o->dropped_servers)
		printf("(%llu datagrams of servers beyond the first %d not shown)\n",
		       (unsigned long long)o->dropped_servers, CL_OBSERVE_MAX_SERVERS);
	if (sg.any) {
		printf("for a profile: ports = [\"%u", sg.port_lo);
		if (sg.port_hi != sg.port_lo)
			printf("-%u", sg.port_hi);
		printf("\"]  pps = %d  size_min = %u  size_max = %u\n", (int)(sg.pps + 0.5), sg.size_min,
		       sg.size_max);
	} else {
		printf("no game traffic seen\n");
	}
}

/* ---- the command ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " --observe (--game NAME | --ports LIST) [--interface IF]\n"
		"         [--seconds N] [--json]\n"
		"\n"
		"Watch a game's UDP traffic without diverting anything, and report the servers it\n"
		"talks to, the packet rates and the sizes each way. Needs CAP_NET_RAW.\n"
		"\n"
		"  --game NAME       the ports of profile NAME; its running process, when found,\n"
		"                    tells its own sockets from other programs'\n"
		"  --ports LIST      UDP server ports, \"7000-9000,27015\" (may be repeated)\n"
		"  --interface IF    where to watch (default: any)\n"
		"  --seconds N       stop after N seconds (default: at Ctrl-C or SIGTERM)\n"
		"  --json            the report as one JSON object (the line saying capture has\n"
		"                    begun goes to stderr)\n");
}

static int add_ports(struct client_observe *o, const char *list)
{
	char buf[512];
	char *save = NULL;

	if (strlen(list) >= sizeof(buf))
		return -1;
	memcpy(buf, list, strlen(list) + 1);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->nports == LS_PROFILE_MAX_PORTS || ls_port_range_parse(t, &o->ports[o->nports]) < 0)
			return -1;
		o->nports++;
	}
	return 0;
}

int client_observe_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "observe", no_argument, NULL, 'o' },    { "game", required_argument, NULL, 'g' },
		{ "ports", required_argument, NULL, 'p' }, { "interface", required_argument, NULL, 'i' },
		{ "seconds", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	struct client_observe *o = calloc(1, sizeof(*o));
	struct ls_profile prof;
	const char *game = NULL, *ifname = "any";
	int64_t seconds = 0;
	bool json = false;
	char err[PCAP_ERRBUF_SIZE + 256], filter[2048];
	int ch, rc = 1;
	pcap_t *p = NULL;
	pid_t pid = 0;

	if (!o)
		return 1;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			break;
		case 'g':
			game = optarg;
			break;
		case 'p':
			if (add_ports(o, optarg) < 0) {
				fprintf(stderr, PROG ": --ports: '%s' is not a list of ports or ranges "
						"(\"7000-9000,27015\", at most %d)\n", optarg, LS_PROFILE_MAX_PORTS);
				goto out;
			}
			break;
		case 'i':
			ifname = optarg;
			break;
		case 's':
			if (ls_parse_i64(optarg, 1, 86400, &seconds) < 0) {
				fprintf(stderr, PROG ": --seconds: 1..86400, not '%s'\n", optarg);
				goto out;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case ':':
			fprintf(stderr, PROG ": option '%s' needs a value\n", argv[optind - 1]);
			goto usage;
		default:
			fprintf(stderr, PROG ": '%s' does not go with --observe\n", argv[optind - 1]);
			goto usage;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	if (game) {
		if (ls_profile_find(game, &prof, err, sizeof(err)) < 0) {
			fprintf(stderr, PROG ": --game: %s\n", err);
			goto out;
		}
		if (!o->nports) {
			memcpy(o->ports, prof.ports, sizeof(prof.ports));
			o->nports = prof.nports;
		}
		pid = ls_profile_running(&prof);
	}
	if (!o->nports) {
		fprintf(stderr, PROG ": --observe needs --game NAME or --ports LIST\n");
		goto usage;
	}
	if (pcap_load(err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}

	/* Headers are all that is needed: sizes come from the UDP length field. */
	size_t fl = (size_t)snprintf(filter, sizeof(filter),
				     "udp and not net 127.0.0.0/8 and (");
	for (size_t i = 0; i < o->nports && fl < sizeof(filter); i++)
		fl += (size_t)snprintf(filter + fl, sizeof(filter) - fl, "%sportrange %u-%u",
				       i ? " or " : "", o->ports[i].lo, o->ports[i].hi);
	if (fl < sizeof(filter))
		snprintf(filter + fl, sizeof(filter) - fl, ")");
	p = pc.create(ifname, err);
	if (!p) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	pc.set_snaplen(p, 128);
	pc.set_promisc(p, 0);
	pc.set_timeout(p, 100);
	pc.set_immediate_mode(p, 1);
	int act = pc.activate(p);
	if (act < 0) {
		fprintf(stderr, PROG ": capturing on %s: %s%s\n", ifname, pc.geterr(p),
			act == PCAP_ERROR_PERM_DENIED ? " (observe mode needs CAP_NET_RAW)" : "");
		goto out;
	}
	struct bpf_program prog;
	if (pc.compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0 ||
	    pc.setfilter(p, &prog) < 0) {
		fprintf(stderr, PROG ": capture filter '%s': %s\n", filter, pc.geterr(p));
		goto out;
	}
	pc.freecode(&prog);
	pc.setnonblock(p, 1, err);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	struct capture cap = { o, pc.datalink(p), json };
	struct pollfd pf[2] = { { pc.get_selectable_fd(p), POLLIN, 0 }, { sfd, POLLIN, 0 } };
	uint64_t next_refresh = 0, end;

	load_local_addrs(o);
	o->started_us = ls_now_us();
	end = seconds ? o->started_us + (uint64_t)seconds * 1000000 : 0;
	{
		/* Said once capturing has begun; with --json on stderr, so that stdout is the
		 * report alone and a script knows when the game may start. */
		FILE *say = json ? stderr : stdout;
		char ports[256];
		ls_port_ranges_fmt(o->ports, o->nports, ",", ports, sizeof(ports));
		fprintf(say, "observing UDP ports %s on %s", ports, ifname);
		if (game)
			fprintf(say, pid ? ", game %s (pid %d)" : ", game %s (not running: every socket counts)",
				game, (int)pid);
		fprintf(say, "; nothing is diverted\n");
		fflush(say);
	}
	for (;;) {
		uint64_t now = ls_now_us();
		if (end && now >= end)
			break;
		if (now >= next_refresh) {
			/* Addresses and the game's sockets change: look again every second. */
			load_local_addrs(o);
			if (game && !pid)
				pid = ls_profile_running(&prof);
			if (pid)
				load_game_ports(o, pid);
			next_refresh = now + 1000000;
		}
		int wait = 1000;
		if (end && (end - now) / 1000 < (uint64_t)wait)
			wait = (int)((end - now) / 1000) + 1;
		if (poll(pf, 2, wait) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (pf[0].revents && pc.dispatch(p, -1, on_packet, (u_char *)&cap) < 0) {
			fprintf(stderr, PROG ": capture: %s\n", pc.geterr(p));
			break;
		}
	}
	pc.dispatch(p, -1, on_packet, (u_char *)&cap);
	report(o, ifname, game, pid, json);
	rc = 0;
	goto out;
usage:
	fprintf(stderr, "Try '" PROG " --observe --help' for more information.\n");
	rc = 2;
out:
	if (p)
		pc.close(p);
	free(o);
	return rc;
}
