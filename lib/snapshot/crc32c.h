/* CRC32C (Castagnoli, as iSCSI, ext4 and btrfs use it): the checksum of snapshot sections. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Continues crc over len bytes; start with 0. crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
