/* The smallest use of libsandbox: boot a microVM, run one command in it, print its console.
 *   example-boot KERNEL INITRAMFS ROOTFS 'COMMAND'
 * Build against an installed library with: cc boot.c $(pkg-config --cflags --libs libsandbox) */
#include <sandbox.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	sbx_config *cfg = sbx_config_new();
	sbx_sandbox *sb = NULL;
	char *console = NULL;
	int rc, reason;

	if (argc != 5 || !cfg) {
		fprintf(stderr, "usage: %s KERNEL INITRAMFS ROOTFS COMMAND\n", argv[0]);
		return 2;
	}
	sbx_config_set_kernel(cfg, argv[1]);
	sbx_config_set_initramfs(cfg, argv[2]);
	sbx_config_add_disk(cfg, argv[3], 1);
	sbx_config_set_kernel_args(cfg, "sbx.ro=1"); /* the init mounts the read-only rootfs so */
	sbx_config_set_init_command(cfg, argv[4]);
	rc = sbx_sandbox_create(cfg, &sb);
	if (rc != SBX_OK) {
		fprintf(stderr, "create: %s: %s\n", sbx_err_name(rc), sbx_config_last_error(cfg));
		sbx_config_free(cfg);
		return 1;
	}
	rc = sbx_sandbox_wait_exit(sb, 300 * 1000, &reason);
	if (sbx_sandbox_console(sb, &console, NULL) == SBX_OK)
		fputs(console, stdout);
	sbx_free(console);
	sbx_sandbox_destroy(sb);
	sbx_config_free(cfg);
	return rc == SBX_OK && reason == SBX_EXIT_POWEROFF ? 0 : 1;
}
