/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/drbd for the DRBD emulator.
 *
 * procfs cannot get new entries from user space: overlayfs refuses /proc as a lower layer, and a bind mount
 * needs an existing target. So processes of a lab node run with this LD_PRELOAD shim, which redirects the one
 * path "/proc/drbd" (open, stat, access families) to the file the emulator keeps current
 * (see map()). Every other path goes to libc untouched. Statically linked programs and direct
 * syscalls are not covered; bash `test -f`, sed, grep, cat and Python are.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fallback[4096];

/* $TANDEM_EMU_PROC_DRBD, else $TANDEM_EMU_DIR/nodes/<hostname>/proc_drbd (the node's UTS name). */
static const char *map(const char *path)
{
	const char *to, *dir;
	char host[256];

	if (!path || strcmp(path, "/proc/drbd") != 0)
		return path;
	to = getenv("TANDEM_EMU_PROC_DRBD");
	if (to && *to)
		return to;
	dir = getenv("TANDEM_EMU_DIR");
	if (!dir || !*dir || gethostname(host, sizeof(host)) != 0)
		return path;
	host[sizeof(host) - 1] = 0;
	snprintf(fallback, sizeof(fallback), "%s/nodes/%s/proc_drbd", dir, host);
	return fallback;
}

typedef int open_t(const char *, int, ...);
typedef int openat_t(int, const char *, int, ...);
typedef FILE *fopen_t(const char *, const char *);
typedef int stat_t(const char *, void *);
typedef int xstat_t(int, const char *, void *);
typedef int fstatat_t(int, const char *, void *, int);
typedef int fxstatat_t(int, int, const char *, void *, int);
typedef int statx_t(int, const char *, int, unsigned int, void *);
typedef int access_t(const char *, int);
typedef int faccessat_t(int, const char *, int, int);

#define OPEN(fn)                                                              \
	int fn(const char *p, int flags, ...)                                 \
	{                                                                     \
		mode_t mode = 0;                                              \
		if (flags & (O_CREAT | O_TMPFILE)) {                          \
			va_list ap;                                           \
			va_start(ap, flags);                                  \
			mode = va_arg(ap, mode_t);                            \
			va_end(ap);                                           \
		}                                                             \
		return ((open_t *)dlsym(RTLD_NEXT, #fn))(map(p), flags, mode); \
	}
#define OPENAT(fn)                                                                     \
	int fn(int d, const char *p, int flags, ...)                                   \
	{                                                                              \
		mode_t mode = 0;                                                       \
		if (flags & (O_CREAT | O_TMPFILE)) {                                   \
			va_list ap;                                                    \
			va_start(ap, flags);                                           \
			mode = va_arg(ap, mode_t);                                     \
			va_end(ap);                                                    \
		}                                                                      \
		return ((openat_t *)dlsym(RTLD_NEXT, #fn))(d, map(p), flags, mode); \
	}
#define FOPEN(fn) \
	FILE *fn(const char *p, const char *m) { return ((fopen_t *)dlsym(RTLD_NEXT, #fn))(map(p), m); }
#define STAT(fn) \
	int fn(const char *p, void *b) { return ((stat_t *)dlsym(RTLD_NEXT, #fn))(map(p), b); }
#define XSTAT(fn) \
	int fn(int v, const char *p, void *b) { return ((xstat_t *)dlsym(RTLD_NEXT, #fn))(v, map(p), b); }
#define FSTATAT(fn) \
	int fn(int d, const char *p, void *b, int f) { return ((fstatat_t *)dlsym(RTLD_NEXT, #fn))(d, map(p), b, f); }
#define FXSTATAT(fn)                                                                   \
	int fn(int v, int d, const char *p, void *b, int f)                            \
	{                                                                              \
		return ((fxstatat_t *)dlsym(RTLD_NEXT, #fn))(v, d, map(p), b, f);     \
	}

OPEN(open) OPEN(open64) OPENAT(openat) OPENAT(openat64)
FOPEN(fopen) FOPEN(fopen64)
STAT(stat) STAT(stat64) STAT(lstat) STAT(lstat64)
XSTAT(__xstat) XSTAT(__xstat64) XSTAT(__lxstat) XSTAT(__lxstat64)
FSTATAT(fstatat) FSTATAT(fstatat64)
FXSTATAT(__fxstatat) FXSTATAT(__fxstatat64)

int statx(int d, const char *p, int f, unsigned int m, void *b)
{
	return ((statx_t *)dlsym(RTLD_NEXT, "statx"))(d, map(p), f, m, b);
}

int access(const char *p, int m) { return ((access_t *)dlsym(RTLD_NEXT, "access"))(map(p), m); }
int faccessat(int d, const char *p, int m, int f)
{
	return ((faccessat_t *)dlsym(RTLD_NEXT, "faccessat"))(d, map(p), m, f);
}
