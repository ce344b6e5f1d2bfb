/*  =========================================================================
    zp_util - conveniences: zp_strerror and zp_version; sockets and actors
    made without an assert when descriptors run out

    zp_strerror says what an errno means in zproc's terms (the errno values
    of the contract, include/zproc/zproc.h); zp_version is the library's
    version at run time, which may differ from the ZPROC_VERSION a program
    was compiled against.
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/eventfd.h>
#include <sys/syscall.h>

//  What each errno of the contract means in zproc
static const struct {
    int errnum;                 //  errno value
    const char *text;           //  Its meaning in zproc's terms
} s_errors [] = {
    { ENOENT,    "no such key" },
    { EINVAL,    "invalid argument, or a value of the wrong type" },
    { ETIMEDOUT, "the timeout ran out" },
    { EINTR,     "interrupted: SIGINT/SIGTERM, or the context shut down" },
    { EMSGSIZE,  "value too large" },
    { ENOTCONN,  "the store is gone" },
    { EACCES,    "refused by CURVE, or a reserved key" },
    { EAGAIN,    "lost compare-and-set or precondition, full mailbox, or watch gap" },
    { ENOBUFS,   "the connection's budget at the store is spent" },
    { EMFILE,    "no file descriptor left" },
    { ESRCH,     "no such live worker" },
    { EIO,       "a pool task failed every try" },
    { ENOMEM,    "out of memory" }
};

#define S_STRINGIFY_(x) #x
#define S_STRINGIFY(x)  S_STRINGIFY_ (x)


//  --------------------------------------------------------------------------
//  What errnum means in zproc's terms, as a static string; for an errno the
//  contract does not use, the C library's strerror text.

const char *
zp_strerror (int errnum)
{
    size_t index;
    for (index = 0; index < sizeof (s_errors) / sizeof (s_errors [0]); index++)
        if (s_errors [index].errnum == errnum)
            return s_errors [index].text;
    return strerror (errnum);
}


//  --------------------------------------------------------------------------
//  The library's version, "MAJOR.MINOR.PATCH", as a static string

const char *
zp_version (void)
{
    return S_STRINGIFY (ZPROC_VERSION_MAJOR) "." S_STRINGIFY (ZPROC_VERSION_MINOR) "."
           S_STRINGIFY (ZPROC_VERSION_PATCH);
}


//  --------------------------------------------------------------------------
//  Descriptors: a zmq socket needs one (an eventfd, its mailbox), and CZMQ
//  4.2 asserts when libzmq returns NULL for it (zsock_new, and zactor_new
//  through zsys_create_pipe). So zproc makes sure of them first, by making
//  eventfds (what libzmq will make) and closing them again. This is a
//  check, not a reservation: another thread may take the descriptors in
//  between, which is why ZP_FD_HEADROOM asks for more than one socket
//  needs (doc/RATIONALE.md, "Descriptors").

int
zp__fd_headroom (int wanted)
{
    int fds [64];
    int made = 0;
    if (wanted > (int) (sizeof fds / sizeof fds [0]))
        wanted = (int) (sizeof fds / sizeof fds [0]);
    while (made < wanted) {
        int fd = eventfd (0, EFD_CLOEXEC);
        if (fd < 0)
            break;
        fds [made++] = fd;
    }
    int saved = errno;
    for (int index = 0; index < made; index++)
        close (fds [index]);
    if (made == wanted)
        return 0;
    return zp__fail (saved == ENOMEM? ENOMEM: EMFILE, -1);
}

zsock_t *
zp__sock_new (int type)
{
    if (zp__fd_headroom (ZP_FD_HEADROOM) < 0)
        return NULL;
    return zsock_new (type);
}

zactor_t *
zp__actor_new (zactor_fn *fn, void *args)
{
    if (zp__fd_headroom (ZP_FD_HEADROOM) < 0)
        return NULL;
    return zactor_new (fn, args);
}

int
zp__pidfd_open (pid_t pid)
{
#if defined (SYS_pidfd_open)
    return (int) syscall (SYS_pidfd_open, pid, 0);
#else
    return zp__fail (ENOSYS, -1);
#endif
}
