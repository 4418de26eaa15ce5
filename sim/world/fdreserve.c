/*
 * fdreserve - simulated descriptors that never alias a real open file
 *
 * See fdreserve.h for the contract and docs/plugins.md (Simulated
 * descriptors) for what a plugin may do with one.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdreserve.h"

/* What each reserved number holds: the inode this module put there. */
static ino_t held[FDRESERVE_END];
static int reserved;                    /* fdreserve_setup ran */
static int placeholder = -1;            /* the shared filler, above the range */
static fdreserve_resolver resolver;
static void *resolver_arg;

/* placeholder_new - an unconnected TCP socket (or /dev/null without one) */
static int placeholder_new(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    return fd;
}

/* put - make number fd a copy of src, remembering what it holds now */
static int put(int src, int fd)
{
    struct stat st;
    if (dup3(src, fd, O_CLOEXEC) < 0 || fstat(fd, &st) < 0)
        return -1;
    held[fd] = st.st_ino;
    return 0;
}

/* fdreserve_setup - reserve [FDRESERVE_BASE, FDRESERVE_END); 0 or -1 */
int fdreserve_setup(void)
{
    if (reserved)
        return 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * FDRESERVE_END) {
        rlim_t want = 4 * FDRESERVE_END;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur <= FDRESERVE_END + 64)
        return -1;      /* no room above the range: reserve nothing */
    /* Real descriptors in the range (inherited, libfaketime's, which maps
     * its memory and keeps using the mapping) move above it. */
    for (int fd = FDRESERVE_BASE; fd < FDRESERVE_END; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
            continue;
        int moved = fcntl(fd, (flags & FD_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, FDRESERVE_END);
        if (moved < 0)
            return -1;
        close(fd);
    }
    int ph = placeholder_new();
    if (ph < 0)
        return -1;
    placeholder = fcntl(ph, F_DUPFD_CLOEXEC, FDRESERVE_END);
    close(ph);
    if (placeholder < 0)
        return -1;
    for (int fd = FDRESERVE_BASE; fd < FDRESERVE_END; fd++)
        if (put(placeholder, fd) < 0)
            return -1;
    reserved = 1;
    return 0;
}

int fdreserve_active(void)
{
    return reserved;
}

/* fdreserve_claim - a fresh socket of its own at number fd; 0 or -1 */
int fdreserve_claim(int fd)
{
    if (!reserved)
        return 0;
    if (fd < FDRESERVE_BASE || fd >= FDRESERVE_END)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_ino != held[fd])
        return -1;      /* a plugin closed ours and a real file took the number */
    int fresh = placeholder_new();
    if (fresh < 0)
        return put(placeholder, fd);
    int rc = fresh == fd ? 0 : put(fresh, fd);
    if (fresh != fd)
        close(fresh);
    else if (fstat(fd, &st) == 0)
        held[fd] = st.st_ino;
    return rc;
}

void fdreserve_set_resolver(fdreserve_resolver fn, void *arg)
{
    resolver = fn;
    resolver_arg = arg;
}

/* fdreserve_clear_resolver - forget arg's resolver (not another's) */
void fdreserve_clear_resolver(void *arg)
{
    if (resolver_arg == arg) {
        resolver = NULL;
        resolver_arg = NULL;
    }
}

/* answer - the resolver's address of fd into addr; 1 when it has none */
static int answer(int fd, int peer, struct sockaddr *addr, socklen_t *len)
{
    if (resolver == NULL)
        return 1;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    memset(&ss, 0, sizeof ss);
    int rc = resolver(resolver_arg, fd, peer, &ss, &sslen);
    if (rc != 0)
        return rc;
    assert(sslen > 0 && sslen <= sizeof ss);
    if (addr == NULL || len == NULL) {
        errno = EFAULT;
        return -1;
    }
    /* As the system call: truncated to *len, *len set to the full size. */
    size_t n = *len < sslen ? *len : sslen;
    memcpy(addr, &ss, n);
    *len = sslen;
    return 0;
}

/* The interposed calls: a simulated descriptor's addresses, else the system's. */
int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    int rc = answer(fd, 1, addr, len);
    return rc != 1 ? rc : (int)syscall(SYS_getpeername, fd, addr, len);
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    int rc = answer(fd, 0, addr, len);
    return rc != 1 ? rc : (int)syscall(SYS_getsockname, fd, addr, len);
}
