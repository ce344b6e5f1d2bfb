/*  =========================================================================
    zproc - processes on steroids: a shared state and actors over CZMQ

    A parent creates a context (zp_ctx_new); the context runs a state store,
    a watcher registry and a process reaper, each a CZMQ zactor. Forked
    workers get a state handle over ipc://, read and write a shared
    key/value state, block until it changes, and exchange messages through
    mailboxes. Workers are always stopped and reaped with their context.

    Errors: functions returning int give 0 on success and -1 with errno set;
    functions returning pointers give NULL with errno set. errno values:
        ENOENT      no such key (or no such worker)
        EINVAL      bad argument, or a value of the wrong type
        ETIMEDOUT   a timeout ran out
        EINTR       interrupted: SIGINT/SIGTERM, or the context shut down
        EMSGSIZE    value too large (see ZP_VALUE_MAX)
        ENOTCONN    the store is gone or does not answer
        EACCES      refused by CURVE, or a reserved key
        EAGAIN      compare-and-swap lost, or a watch fell behind the log
        ENOBUFS     the connection's budget at the store is spent
        EMFILE      no file descriptor left
        ESRCH       no such (live) worker
        EIO         a pool task failed every try
    zp_strerror (errno) says the same in words.
    No function asserts or aborts on user input.
    =========================================================================
*/

#ifndef ZPROC_H_INCLUDED
#define ZPROC_H_INCLUDED

#include <czmq.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#if CZMQ_VERSION < 40200
#   error "zproc needs CZMQ 4.2 or later (apt-get install libczmq-dev)"
#endif
#if ZMQ_VERSION < ZMQ_MAKE_VERSION (4, 3, 0)
#   error "zproc needs libzmq 4.3 or later (apt-get install libzmq3-dev)"
#endif

#define ZPROC_VERSION_MAJOR 0
#define ZPROC_VERSION_MINOR 1
#define ZPROC_VERSION_PATCH 0
#define ZPROC_MAKE_VERSION(major, minor, patch) \
    ((major) * 10000 + (minor) * 100 + (patch))
#define ZPROC_VERSION \
    ZPROC_MAKE_VERSION (ZPROC_VERSION_MAJOR, ZPROC_VERSION_MINOR, ZPROC_VERSION_PATCH)

//  What errnum means in zproc's terms ("the store is gone" for ENOTCONN), as
//  a static string the caller must not free; for an errno zproc does not
//  use, the C library's strerror text. Sets no errno.
const char *
    zp_strerror (int errnum);

//  The library's version at run time, "MAJOR.MINOR.PATCH" (a static string),
//  which may differ from the ZPROC_VERSION_* a program was compiled against
const char *
    zp_version (void);

//  Keys are non-empty strings of at most this many bytes
#define ZP_KEY_MAX      255
//  Values are binary-safe byte strings of at most this many bytes
#define ZP_VALUE_MAX    (16 * 1024 * 1024)
//  Worker names are [A-Za-z0-9._-], at most this many bytes
#define ZP_NAME_MAX     64

//  Opaque class types
typedef struct _zp_ctx_t zp_ctx_t;
typedef struct _zp_state_t zp_state_t;
typedef struct _zp_worker_t zp_worker_t;
typedef struct _zp_proc_t zp_proc_t;
typedef struct _zp_watch_t zp_watch_t;
typedef struct _zp_pool_t zp_pool_t;
typedef struct _zp_txn_t zp_txn_t;

//  The body of a worker process; props is the parent's pointer, read
//  through fork's copy of memory. When it returns the worker exits with 0.
typedef void (zp_worker_fn) (zp_worker_t *self, void *props);

//  A condition over the state, run in the caller's process on a read-only
//  view; the getters of zp_state work on the view without round trips.
typedef bool (zp_predicate_fn) (zp_state_t *view, void *arg);

#include "zp_state.h"
#include "zp_watch.h"
#include "zp_txn.h"
#include "zp_worker.h"
#include "zp_proc.h"
#include "zp_ctx.h"
#include "zp_pool.h"

#endif
