/* Where the CLI finds a guest kernel and its initramfs when the user names none. */
#pragma once
#include <stddef.h>

/* The newest /boot/vmlinuz-*-cloud-amd64, else the newest /boot/vmlinuz-*. 0 or -ENOENT. */
int guest_kernel_find(char *path, size_t len);
/* "6.1.0-56-cloud-amd64" from ".../vmlinuz-6.1.0-56-cloud-amd64". */
const char *guest_kernel_release(const char *kernel_path);
/* Builds the initramfs for kernel_path under the cache dir ($SANDBOX_CACHE_DIR, else
 * ~/.cache/libsandbox) and puts its path in `path`. SBX code; message in err. */
int guest_initramfs_build(const char *kernel_path, char *path, size_t len, char *err,
			   size_t errlen);
/* The cache directory, created if missing. */
int guest_cache_dir(char *path, size_t len);
