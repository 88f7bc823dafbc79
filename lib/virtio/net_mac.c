/* virtio-net MAC addresses: parsing, checking and deriving them. Apart from the device so the
 * library, which picks a sandbox's MAC before the VMM exists, links only this. */
#include <errno.h>
#include <string.h>

#include "net.h"

int virtio_net_mac_ok(const uint8_t mac[PKT_MAC_LEN])
{
	static const uint8_t zero[PKT_MAC_LEN];

	return !(mac[0] & 1) && memcmp(mac, zero, PKT_MAC_LEN) != 0;
}

static int net_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int virtio_net_mac_parse(const char *s, uint8_t mac[PKT_MAC_LEN])
{
	uint8_t m[PKT_MAC_LEN];

	if (strlen(s) != 3 * PKT_MAC_LEN - 1)
		return -EINVAL;
	for (int i = 0; i < PKT_MAC_LEN; i++) {
		int hi = net_hex(s[3 * i]), lo = net_hex(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < PKT_MAC_LEN - 1 && s[3 * i + 2] != ':'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!virtio_net_mac_ok(m))
		return -EINVAL;
	memcpy(mac, m, PKT_MAC_LEN);
	return 0;
}

void virtio_net_mac_from_id(const char *id, uint8_t mac[PKT_MAC_LEN])
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *p = id; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 0x100000001b3ULL;
	}
	for (int i = 0; i < PKT_MAC_LEN; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	/* Unicast (bit 0 clear), locally administered (bit 1 set). */
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);
}

void virtio_net_mac_format(const uint8_t mac[PKT_MAC_LEN], char out[18])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < PKT_MAC_LEN; i++) {
		out[3 * i] = hex[mac[i] >> 4];
		out[3 * i + 1] = hex[mac[i] & 15];
		out[3 * i + 2] = i < PKT_MAC_LEN - 1 ? ':' : '\0';
	}
}
