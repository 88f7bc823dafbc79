/* The network API: egress policies, the network part of a config, live policy changes and the
 * denial log (docs/networking.md). The host side is lib/api/net_host.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "net/egress.h"
#include "net_host.h"
#include "net_record.h"
#include "util/io.h"
#include "virtio/net.h"

#define NET_LOG_PAGE 64

/* ---- policies ---- */

static int net_mode_ok(int mode)
{
	return mode == SBX_NET_NONE || mode == SBX_NET_ALL || mode == SBX_NET_ALLOW;
}

sbx_net_policy *sbx_net_policy_new(int mode)
{
	sbx_net_policy *p;

	if (!net_mode_ok(mode))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p)
		p->mode = mode;
	return p;
}

void sbx_net_policy_free(sbx_net_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->entries[i]);
	free(p->entries);
	free(p);
}

int sbx_net_policy_set_mode(sbx_net_policy *p, int mode)
{
	if (!p || !net_mode_ok(mode))
		return SBX_EINVAL;
	p->mode = mode;
	return SBX_OK;
}

int sbx_net_policy_mode(const sbx_net_policy *p)
{
	return p ? p->mode : SBX_NET_NONE;
}

size_t sbx_net_policy_count(const sbx_net_policy *p)
{
	return p ? p->n : 0;
}

const char *sbx_net_policy_entry(const sbx_net_policy *p, size_t i)
{
	return p && i < p->n ? p->entries[i] : NULL;
}

/* The stored form of an entry: addresses as written (their syntax has one spelling), names in
 * lower case without a trailing dot. *is_name tells which. SBX_EINVAL for neither. */
static int net_entry_normalize(const char *entry, char out[DNS_NAME_TEXT_MAX + 3], int *is_name)
{
	char name[DNS_NAME_TEXT_MAX + 1];
	uint32_t net;
	uint8_t prefix;
	uint16_t port;
	int wildcard;

	if (!entry || strlen(entry) > DNS_NAME_TEXT_MAX + 2)
		return SBX_EINVAL;
	if (egress_cidr_parse(entry, &net, &prefix, &port) == 0) {
		*is_name = 0;
		snprintf(out, DNS_NAME_TEXT_MAX + 3, "%s", entry);
		return SBX_OK;
	}
	if (egress_domain_parse(entry, name, &wildcard) < 0)
		return SBX_EINVAL;
	*is_name = 1;
	snprintf(out, DNS_NAME_TEXT_MAX + 3, "%s%s", wildcard ? "*." : "", name);
	return SBX_OK;
}

static int net_entry_is_name(const char *stored)
{
	uint32_t net;
	uint8_t prefix;
	uint16_t port;

	return egress_cidr_parse(stored, &net, &prefix, &port) < 0;
}

static ssize_t net_policy_find(const sbx_net_policy *p, const char *stored)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->entries[i], stored) == 0)
			return (ssize_t)i;
	return -1;
}

int sbx_net_policy_add(sbx_net_policy *p, const char *entry)
{
	char stored[DNS_NAME_TEXT_MAX + 3];
	size_t same_kind = 0;
	int is_name;

	if (!p || net_entry_normalize(entry, stored, &is_name) != SBX_OK)
		return SBX_EINVAL;
	if (net_policy_find(p, stored) >= 0)
		return SBX_OK;
	for (size_t i = 0; i < p->n; i++)
		same_kind += net_entry_is_name(p->entries[i]) == is_name;
	if (same_kind >= (is_name ? EGRESS_MAX_DOMAINS : EGRESS_MAX_RULES))
		return SBX_ERANGE;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 8;
		char **bigger = realloc(p->entries, cap * sizeof(*bigger));
		if (!bigger)
			return SBX_ENOMEM;
		p->entries = bigger;
		p->cap = cap;
	}
	p->entries[p->n] = strdup(stored);
	if (!p->entries[p->n])
		return SBX_ENOMEM;
	p->n++;
	return SBX_OK;
}

int sbx_net_policy_remove(sbx_net_policy *p, const char *entry)
{
	char stored[DNS_NAME_TEXT_MAX + 3];
	ssize_t i;
	int is_name;

	if (!p || net_entry_normalize(entry, stored, &is_name) != SBX_OK)
		return SBX_EINVAL;
	i = net_policy_find(p, stored);
	if (i < 0)
		return SBX_ENOENT;
	free(p->entries[i]);
	memmove(p->entries + i, p->entries + i + 1, (p->n - (size_t)i - 1) * sizeof(char *));
	p->n--;
	return SBX_OK;
}

const char *net_mode_name(int mode)
{
	return mode == SBX_NET_ALL ? "all" : mode == SBX_NET_ALLOW ? "allow" : "none";
}

static int net_mode_from_name(const char *name, size_t len)
{
	static const char *const names[] = {"none", "all", "allow"};

	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
			return i;
	return -1;
}

int sbx_net_policy_parse(const char *text, sbx_net_policy **out, char **bad)
{
	const char *colon, *p;
	sbx_net_policy *pol;
	int mode, rc = SBX_OK;

	if (!text || !out)
		return SBX_EINVAL;
	colon = strchr(text, ':');
	mode = net_mode_from_name(text, colon ? (size_t)(colon - text) : strlen(text));
	if (mode < 0 || (colon && mode != SBX_NET_ALLOW)) {
		if (bad)
			*bad = strdup(text);
		return SBX_EINVAL;
	}
	pol = sbx_net_policy_new(mode);
	if (!pol)
		return SBX_ENOMEM;
	for (p = colon ? colon + 1 : ""; rc == SBX_OK && *p;) {
		size_t len = strcspn(p, ",");
		char *entry = strndup(p, len);

		rc = entry ? sbx_net_policy_add(pol, entry) : SBX_ENOMEM;
		if (rc != SBX_OK && bad)
			*bad = entry, entry = NULL;
		free(entry);
		p += len + (p[len] == ',');
	}
	if (rc != SBX_OK) {
		sbx_net_policy_free(pol);
		return rc;
	}
	*out = pol;
	return SBX_OK;
}

int sbx_net_policy_format(const sbx_net_policy *p, char **text)
{
	size_t len = 8;
	char *s, *w;

	if (!p || !text)
		return SBX_EINVAL;
	for (size_t i = 0; i < p->n; i++)
		len += strlen(p->entries[i]) + 1;
	s = malloc(len);
	if (!s)
		return SBX_ENOMEM;
	w = s + sprintf(s, "%s", net_mode_name(p->mode));
	for (size_t i = 0; i < p->n; i++)
		w += sprintf(w, "%c%s", i ? ',' : ':', p->entries[i]);
	*text = s;
	return SBX_OK;
}

static sbx_net_policy *net_policy_copy(const sbx_net_policy *p)
{
	sbx_net_policy *c = sbx_net_policy_new(p->mode);

	for (size_t i = 0; c && i < p->n; i++) {
		if (sbx_net_policy_add(c, p->entries[i]) != SBX_OK) {
			sbx_net_policy_free(c);
			return NULL;
		}
	}
	return c;
}

json_t *net_policy_json(const struct sbx_net_policy *p)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < p->n; i++) {
		if (json_array_append_new(list, json_string(p->entries[i])) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list ? json_pack("{s:s, s:o}", "mode", net_mode_name(p->mode), "allow", list) : NULL;
}

int net_policy_from_json(json_t *j, sbx_net_policy **out)
{
	const char *mode = NULL;
	json_t *list = NULL, *e;
	sbx_net_policy *p;
	size_t i;
	int m;

	if (json_unpack(j, "{s:s, s?o}", "mode", &mode, "allow", &list) < 0 ||
	    (m = net_mode_from_name(mode, strlen(mode))) < 0)
		return SBX_EPROTO;
	p = sbx_net_policy_new(m);
	if (!p)
		return SBX_ENOMEM;
	json_array_foreach(list, i, e)
	{
		if (!json_is_string(e) || sbx_net_policy_add(p, json_string_value(e)) != SBX_OK) {
			sbx_net_policy_free(p);
			return SBX_EPROTO;
		}
	}
	*out = p;
	return SBX_OK;
}

/* ---- config ---- */

void net_config_free(sbx_config *cfg)
{
	sbx_net_policy_free(cfg->net_policy);
	free(cfg->net_mac);
	free(cfg->net_pool);
	free(cfg->net_dns);
}

int sbx_config_set_net_policy(sbx_config *cfg, const sbx_net_policy *p)
{
	sbx_net_policy *copy = NULL;

	if (!cfg)
		return SBX_EINVAL;
	if (p && !(copy = net_policy_copy(p)))
		return sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
	sbx_net_policy_free(cfg->net_policy);
	cfg->net_policy = copy;
	return SBX_OK;
}

int sbx_config_set_net_mac(sbx_config *cfg, const char *mac)
{
	uint8_t m[6];

	if (!cfg)
		return SBX_EINVAL;
	if (mac && virtio_net_mac_parse(mac, m) < 0)
		return sbx_fail(cfg->err, SBX_EINVAL, "MAC %s: not a unicast xx:xx:xx:xx:xx:xx",
				mac);
	return sbx_set_string(&cfg->net_mac, mac);
}

int sbx_config_set_net_pool(sbx_config *cfg, const char *cidr)
{
	uint32_t net;
	unsigned prefix;

	if (!cfg)
		return SBX_EINVAL;
	if (cidr && net_pool_parse(cidr, &net, &prefix) != SBX_OK)
		return sbx_fail(
		    cfg->err, SBX_EINVAL,
		    "network pool %s: not A.B.C.D/P with P from 8 to 29 and no host bits", cidr);
	return sbx_set_string(&cfg->net_pool, cidr);
}

/* "IP" or "IP:PORT" into "IP:PORT". */
static int net_dns_normalize(const char *s, char *out, size_t len)
{
	const char *colon = strchr(s, ':');
	uint32_t ip;
	char *end;
	long port = 53;

	if (pkt_ipv4_parse(s, colon ? (size_t)(colon - s) : strlen(s), &ip) < 0)
		return SBX_EINVAL;
	if (colon) {
		port = strtol(colon + 1, &end, 10);
		if (*end || end == colon + 1 || port < 1 || port > 65535)
			return SBX_EINVAL;
	}
	snprintf(out, len, "%.*s:%ld", (int)(colon ? (size_t)(colon - s) : strlen(s)), s, port);
	return SBX_OK;
}

int sbx_config_set_net_dns(sbx_config *cfg, const char *server)
{
	char norm[32];

	if (!cfg)
		return SBX_EINVAL;
	if (server && net_dns_normalize(server, norm, sizeof(norm)) != SBX_OK)
		return sbx_fail(cfg->err, SBX_EINVAL, "DNS server %s: not IPv4[:port]", server);
	return sbx_set_string(&cfg->net_dns, server ? norm : NULL);
}

int sbx_config_set_net_admit_private(sbx_config *cfg, int admit)
{
	if (!cfg)
		return SBX_EINVAL;
	cfg->net_admit_private = admit != 0;
	return SBX_OK;
}

/* The upstream DNS server: configured, $SANDBOX_NET_DNS, or the host's first IPv4 nameserver.
 * Empty when there is none (allowed names then fail to resolve). */
static void net_dns_upstream(const sbx_config *cfg, char *out, size_t len)
{
	const char *env = getenv("SANDBOX_NET_DNS");
	char line[256], addr[64];
	FILE *f;

	out[0] = 0;
	if (cfg->net_dns) {
		snprintf(out, len, "%s", cfg->net_dns);
		return;
	}
	if (env && *env && net_dns_normalize(env, out, len) == SBX_OK)
		return;
	out[0] = 0;
	f = fopen("/etc/resolv.conf", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, " nameserver %63s", addr) == 1 &&
		    net_dns_normalize(addr, out, len) == SBX_OK)
			break;
		out[0] = 0;
	}
	if (f)
		fclose(f);
}

int net_sandbox_prepare(sbx_config *cfg, const struct net_want *want, const char *dir,
			const char *id, int vmm_tap_fd, int vmm_dns_fd, struct net_host *h,
			json_t **net, char *word, size_t word_len)
{
	char base[4096], dns[64], ip[16], gw[16], gw_mac[18], mac_text[18];
	uint8_t mac[6];
	json_t *policy;
	int rc;

	if (cfg->net_mac)
		virtio_net_mac_parse(cfg->net_mac, mac);
	else
		virtio_net_mac_from_id(id, mac);
	snprintf(base, sizeof(base), "%s", dir);
	*strrchr(base, '/') = 0;
	rc = net_host_up(base, dir, id, cfg->net_pool, mac, h, cfg->err);
	if (rc != SBX_OK)
		return rc;
	/* The upstream is reached through the DNS guard, which the VMM relays to. */
	if (want->dns && !cfg->net_dns)
		snprintf(dns, sizeof(dns), "%s", want->dns);
	else
		net_dns_upstream(cfg, dns, sizeof(dns));
	if (dns[0]) {
		h->dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (h->dns_fd < 0)
			return sbx_fail(cfg->err, SBX_EIO, "DNS upstream socket: %s", strerror(errno));
		rc = dns_guard_spawn(dir, h->table, dns, want->admit_private, cfg->jail_uid,
				     cfg->jail_gid, &h->dns_fd, cfg->err);
		if (rc != SBX_OK)
			return rc;
	}
	/* The library's own record first: applying the policy reads what it replaces. */
	rc = net_record_write(dir, want->policy, dns, want->admit_private, cfg->err);
	if (rc == SBX_OK)
		rc = net_host_apply_policy(dir, want->policy, cfg->err);
	if (rc != SBX_OK)
		return rc;
	virtio_net_mac_format(mac, mac_text);
	virtio_net_mac_format(h->gateway_mac, gw_mac);
	pkt_ipv4_format(h->guest_ip, ip);
	pkt_ipv4_format(h->gateway_ip, gw);
	policy = net_policy_json(want->policy);
	*net = policy ? json_pack("{s:i, s:s, s:s, s:s, s:i, s:b, s:o}", "tap_fd", vmm_tap_fd,
				  "mac", mac_text, "guest_ip", ip, "gateway_ip", gw, "dns_fd",
				  dns[0] ? vmm_dns_fd : -1, "admit_private", want->admit_private,
				  "policy", policy)
		      : NULL;
	if (!*net)
		return sbx_fail(cfg->err, SBX_ENOMEM, "out of memory");
	/* The guest's side (guest/init.c): address/prefix, gateway, DNS server, gateway's MAC. */
	snprintf(word, word_len, "sbx.net=%s/30,%s,%s,%s", ip, gw, gw, gw_mac);
	return SBX_OK;
}

int sbx_sandbox_set_net_policy(sbx_sandbox *sb, const sbx_net_policy *p)
{
	json_t *req, *reply = NULL, *policy;
	char path[4200];
	int rc, lock_fd;

	if (!sb || !p)
		return SBX_EINVAL;
	/* Writers take turns (<dir>/net, flock), so the two layers end on the same policy. */
	snprintf(path, sizeof(path), "%s/net", sb->dir);
	lock_fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (lock_fd >= 0)
		flock(lock_fd, LOCK_EX);
	policy = net_policy_json(p);
	req = policy ? json_pack("{s:s, s:o}", "cmd", "net_policy", "policy", policy) : NULL;
	rc = sandbox_command(sb, req, &reply);
	json_decref(req);
	json_decref(reply);
	/* The second layer follows the VMM's (which refused a policy it cannot take). */
	if (rc == SBX_OK) {
		char err[SBX_ERRMSG_MAX];
		rc = net_host_apply_policy(sb->dir, p, err);
		if (rc != SBX_OK)
			sandbox_error(sb, rc, err);
	}
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}

int sbx_sandbox_get_net_policy(sbx_sandbox *sb, sbx_net_policy **out)
{
	json_t *req = json_pack("{s:s}", "cmd", "net_policy_get"), *reply = NULL;
	int rc;

	if (!sb || !out) {
		json_decref(req);
		return SBX_EINVAL;
	}
	rc = sandbox_command(sb, req, &reply);
	json_decref(req);
	if (rc == SBX_OK && net_policy_from_json(json_object_get(reply, "policy"), out) != SBX_OK)
		rc = sandbox_error(sb, SBX_EPROTO, "the VMM sent a malformed policy");
	json_decref(reply);
	return rc;
}

/* ---- the denial log ---- */

struct sbx_net_log {
	json_t *denials;
	unsigned long long next, total, lost;
};

int sbx_sandbox_net_log(sbx_sandbox *sb, unsigned long long cursor, sbx_net_log **out)
{
	sbx_net_log *l;
	int rc = SBX_OK;

	if (!sb || !out)
		return SBX_EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->denials = json_array())) {
		free(l);
		return sandbox_error(sb, SBX_ENOMEM, "out of memory");
	}
	l->next = cursor;
	/* Page by page: a page's answer fits one line of the command socket. */
	for (int first = 1; rc == SBX_OK; first = 0) {
		json_t *req = json_pack("{s:s, s:I, s:i}", "cmd", "net_log", "cursor",
					(json_int_t)l->next, "max", NET_LOG_PAGE),
		       *reply = NULL, *page;
		json_int_t next = 0, total = 0, lost = 0;

		rc = sandbox_command(sb, req, &reply);
		json_decref(req);
		if (rc != SBX_OK)
			break;
		if (json_unpack(reply, "{s:o, s:I, s:I, s:I}", "denials", &page, "next", &next,
				"denied", &total, "lost", &lost) < 0 ||
		    !json_is_array(page)) {
			rc = sandbox_error(sb, SBX_EPROTO, "the VMM sent a malformed log");
		} else {
			json_array_extend(l->denials, page);
			if (first)
				l->lost = (unsigned long long)lost;
			l->next = (unsigned long long)next;
			l->total = (unsigned long long)total;
		}
		json_decref(reply);
		if (rc == SBX_OK && json_array_size(page) < NET_LOG_PAGE)
			break;
	}
	if (rc != SBX_OK) {
		sbx_net_log_free(l);
		return rc;
	}
	*out = l;
	return SBX_OK;
}

static json_t *net_log_at(const sbx_net_log *l, size_t i)
{
	return l ? json_array_get(l->denials, i) : NULL;
}

size_t sbx_net_log_count(const sbx_net_log *l)
{
	return l ? json_array_size(l->denials) : 0;
}

double sbx_net_log_time(const sbx_net_log *l, size_t i)
{
	return json_number_value(json_object_get(net_log_at(l, i), "time"));
}

const char *sbx_net_log_protocol(const sbx_net_log *l, size_t i)
{
	return json_string_value(json_object_get(net_log_at(l, i), "proto"));
}

const char *sbx_net_log_destination(const sbx_net_log *l, size_t i)
{
	return json_string_value(json_object_get(net_log_at(l, i), "dst"));
}

int sbx_net_log_port(const sbx_net_log *l, size_t i)
{
	return (int)json_integer_value(json_object_get(net_log_at(l, i), "port"));
}

const char *sbx_net_log_reason(const sbx_net_log *l, size_t i)
{
	return json_string_value(json_object_get(net_log_at(l, i), "reason"));
}

unsigned long long sbx_net_log_next(const sbx_net_log *l)
{
	return l ? l->next : 0;
}

unsigned long long sbx_net_log_total(const sbx_net_log *l)
{
	return l ? l->total : 0;
}

unsigned long long sbx_net_log_lost(const sbx_net_log *l)
{
	return l ? l->lost : 0;
}

void sbx_net_log_free(sbx_net_log *l)
{
	if (!l)
		return;
	json_decref(l->denials);
	free(l);
}
