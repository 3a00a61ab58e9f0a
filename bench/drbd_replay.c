/* SPDX-License-Identifier: GPL-2.0-or-later */
/* drbd-replay: answers one DRBD command line (drbdsetup/drbdadm, by argv[0]'s base name) with the stdout,
 * stderr and exit code recorded for exactly that command line, as fast as a small C program starts: the
 * bench's stand-in for drbd-utils, so that agents are timed with DRBD tools of real speed.
 *
 * Recordings live in $TANDEM_REPLAY_DIR, one file per command line, named by the 64-bit FNV-1a hash (16 hex
 * digits) of the base name and the arguments, each followed by a NUL byte. A file holds
 * "<exit code>\n<stdout length>\n", then stdout, then stderr (bench/replay.py writes them).
 * A command line without a recording prints that on stderr and exits 20, as drbdsetup does for a bad call. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
        if (!*p)
            return h;
    }
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    static char buf[1 << 20];
    const char *dir = getenv("TANDEM_REPLAY_DIR");
    const char *prog = strrchr(argv[0], '/');
    prog = prog ? prog + 1 : argv[0];
    uint64_t h = fnv1a(14695981039346656037ULL, prog);
    for (int i = 1; i < argc; i++)
        h = fnv1a(h, argv[i]);
    char path[4096];
    snprintf(path, sizeof path, "%s/%016llx", dir ? dir : ".", (unsigned long long)h);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "drbd-replay: no recording of this %s call (%s)\n", prog, path);
        return 20;
    }
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) > 0)
        len += (size_t)n;
    close(fd);
    char *end;
    long rc = strtol(buf, &end, 10);
    unsigned long outlen = strtoul(end + 1, &end, 10);
    char *body = end + 1;
    size_t bodylen = len - (size_t)(body - buf);
    if (outlen > bodylen)
        outlen = bodylen;
    if (write_all(1, body, outlen) || write_all(2, body + outlen, bodylen - outlen))
        return 141;
    return (int)rc;
}
