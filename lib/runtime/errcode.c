#include "errcode.h"

#include <errno.h>

const char *vmm_errcode(int err)
{
	switch (err) {
	case ENOENT:
		return "ENOENT";
	case EACCES:
	case EPERM:
		return "EPERM";
	case ENOEXEC:
		return "EKERNEL";
	case E2BIG:
		return "ERANGE";
	case ENOMEM:
		return "ENOMEM";
	case EINVAL:
		return "EINVAL";
	/* A snapshot that is corrupt, truncated, of another version or for another machine. */
	case EBADMSG:
	case EPROTONOSUPPORT:
		return "ESNAPSHOT";
	case EIO:
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
	case EROFS:
	case EEXIST:
		return "EIO";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EBUSY:
		return "ESTATE";
	case EOPNOTSUPP:
		return "ENOTSUP";
	default:
		return "EVMM";
	}
}
