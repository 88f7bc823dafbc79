/* errno -> its symbolic name, for the "code" of error events. Our own table rather than glibc's
 * strerrorname_np, so the agent does not depend on which libc it is linked with. */
#include "agent.h"

#include <errno.h>
#include <stddef.h>

#define ERRNO_NAMES(X)                                                                             \
	X(EPERM)                                                                                   \
	X(ENOENT)                                                                                  \
	X(ESRCH)                                                                                   \
	X(EINTR)                                                                                   \
	X(EIO)                                                                                     \
	X(ENXIO)                                                                                   \
	X(E2BIG)                                                                                   \
	X(ENOEXEC)                                                                                 \
	X(EBADF)                                                                                   \
	X(ECHILD)                                                                                  \
	X(EAGAIN)                                                                                  \
	X(ENOMEM)                                                                                  \
	X(EACCES)                                                                                  \
	X(EFAULT)                                                                                  \
	X(EBUSY)                                                                                   \
	X(EEXIST)                                                                                  \
	X(EXDEV)                                                                                   \
	X(ENODEV)                                                                                  \
	X(ENOTDIR)                                                                                 \
	X(EISDIR)                                                                                  \
	X(EINVAL)                                                                                  \
	X(ENFILE)                                                                                  \
	X(EMFILE)                                                                                  \
	X(ETXTBSY)                                                                                 \
	X(EFBIG)                                                                                   \
	X(ENOSPC)                                                                                  \
	X(ESPIPE)                                                                                  \
	X(EROFS)                                                                                   \
	X(EMLINK)                                                                                  \
	X(EPIPE)                                                                                   \
	X(ERANGE)                                                                                  \
	X(ENAMETOOLONG)                                                                            \
	X(ENOSYS)                                                                                  \
	X(ENOTEMPTY)                                                                               \
	X(ELOOP)                                                                                   \
	X(EPROTO)                                                                                  \
	X(EMSGSIZE)                                                                                \
	X(EOPNOTSUPP)                                                                              \
	X(ECONNRESET)                                                                              \
	X(ETIMEDOUT)                                                                               \
	X(EDQUOT)                                                                                  \
	X(ECANCELED)

const char *errno_name(int err)
{
	static const struct {
		int err;
		const char *name;
	} names[] = {
#define ERRNO_ENTRY(e) {e, #e},
	    ERRNO_NAMES(ERRNO_ENTRY)
#undef ERRNO_ENTRY
	};

	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].err == err)
			return names[i].name;
	return "EIO";
}
