/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The emulator's drbdsetup and drbdadm as a C program (one binary, named by the file it runs as), so that a
 * call costs a C program's start, not a Python one's: it hands its call to the node's tool server
 * (toolserver.py, started by the node's emulator kernel) and exits with the exit status the call had there.
 * Without a server (no kernel, another node's or namespace's server, a name too long) it execs the Python
 * fake, which does the same work in this process: the results are the same either way.
 *
 * The server is an abstract Unix socket (SOCK_SEQPACKET), so it goes with its process and is seen only in
 * its network namespace: "\0tandem-drbd-emu:<node>:<real path of TANDEM_EMU_DIR>". The request is one
 * message: NUL-terminated strings (the protocol tag, the program, the umask in octal, argc, argv, then
 * every environment entry) with fds 0, 1, 2 and the working directory (SCM_RIGHTS). The reply is
 * "exit N", "signal N" or "fallback" (the server declines; nothing ran).
 *
 * Built by install.py per emulator directory with -DEMU_DIR, -DEMU_DEVICES (the defaults the Python wrappers
 * set) and -DFALLBACK (the directory of the Python wrappers). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#define TAG "tandem-emu-1"

extern char **environ;

static void fallback(const char *prog, char **argv) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", FALLBACK, prog);
    execv(path, argv);
    fprintf(stderr, "%s: exec %s: %s\n", prog, path, strerror(errno));
    _exit(127);
}

/* The server's address; 0 when it can not have one. */
static socklen_t address(struct sockaddr_un *a) {
    const char *node = getenv("TANDEM_EMU_NODE");
    struct utsname u;
    char dir[PATH_MAX];
    if (!node || !*node) {
        if (uname(&u) < 0)
            return 0;
        node = u.nodename;
    }
    if (!realpath(getenv("TANDEM_EMU_DIR"), dir))
        return 0;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "tandem-drbd-emu:%s:%s", node, dir);
    if (n < 0 || (size_t)n >= sizeof a->sun_path - 1)
        return 0;
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static char *put(char *p, const char *s) {
    size_t n = strlen(s) + 1;
    memcpy(p, s, n);
    return p + n;
}

/* Send the call; returns the connected socket, or -1 when the server is not there (nothing ran). */
static int ask(const char *prog, int argc, char **argv) {
    struct sockaddr_un a;
    socklen_t alen = address(&a);
    if (!alen)
        return -1;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, alen) < 0)
        return -1;
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0)
            return -1;
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0)
        return -1;
    mode_t mask = umask(0);
    umask(mask);
    char head[64];
    int hlen = snprintf(head, sizeof head, "%s%c%s%c%o%c%d", TAG, 0, prog, 0, (unsigned)mask, 0, argc);
    size_t len = (size_t)hlen + 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    for (char **e = environ; *e; e++)
        len += strlen(*e) + 1;
    char *buf = malloc(len);
    if (!buf)
        return -1;
    char *p = buf;
    memcpy(p, head, (size_t)hlen + 1);
    p += hlen + 1;
    for (int i = 0; i < argc; i++)
        p = put(p, argv[i]);
    for (char **e = environ; *e; e++)
        p = put(p, *e);
    int fds[4] = {0, 1, 2, cwd};
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    ssize_t sent = sendmsg(s, &msg, MSG_NOSIGNAL);
    close(cwd);
    free(buf);
    return sent == (ssize_t)len ? s : -1;
}

int main(int argc, char **argv) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    const char *prog = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    if (strcmp(prog, "drbdsetup") && strcmp(prog, "drbdadm")) {
        fprintf(stderr, "tandem DRBD emulator client: run as drbdsetup or drbdadm, not '%s'\n", exe);
        return 127;
    }
    setenv("TANDEM_EMU_DIR", EMU_DIR, 0); /* what the Python wrappers set by default */
    setenv("TANDEM_EMU_DEVICES", EMU_DEVICES, 0);
    int s = ask(prog, argc, argv);
    if (s < 0)
        fallback(prog, argv);
    char reply[64];
    ssize_t r;
    do
        r = recv(s, reply, sizeof reply - 1, 0);
    while (r < 0 && errno == EINTR);
    reply[r > 0 ? r : 0] = 0;
    int code;
    if (!strcmp(reply, "fallback"))
        fallback(prog, argv);
    if (sscanf(reply, "exit %d", &code) == 1)
        return code;
    if (sscanf(reply, "signal %d", &code) == 1) {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        signal(code, SIG_DFL);
        raise(code);
        return 128 + code;
    }
    fprintf(stderr, "%s: the emulator's tool server went away during the call\n", prog);
    return 1;
}
