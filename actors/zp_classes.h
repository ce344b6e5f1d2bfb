/*  =========================================================================
    zp_classes - private header, included first and only by every .c file

    Internal prototypes shared between the library's files (zp__name, never
    exported: libzproc exports only the public classes, zp_ctx_, zp_state_,
    zp_watch_, zp_worker_, zp_proc_ and zp_pool_; the actors are internal too).
    =========================================================================
*/

#ifndef ZP_CLASSES_H_INCLUDED
#define ZP_CLASSES_H_INCLUDED

#include "config.h"
#include "zproc/zproc.h"
#include <zmq.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>
#include <limits.h>
#include <ctype.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

//  A context's CURVE keys, made by zp_ctx_new when CURVE is on and
//  inherited by its workers through fork's copy of memory, never on disk
typedef struct {
    zcert_t *store;             //  The store's keypair
    zcert_t *client;            //  The certificate the context issues to its processes
    zcert_t *mailbox;           //  The keypair every mailbox serves with
} zp_keys_t;

//  A page of memory shared by a context and every process it forks, made
//  before any fork: the store publishes there the sequence number of its
//  last change before it answers the request that made it, so a handle can
//  tell "nothing changed since" with one memory read (zp_state_replicate)
typedef struct {
    uint64_t seq;               //  Store's last change; release store, acquire load
} zp_shared_t;

#include "zp_proto.h"
#include "zp_change.h"
#include "zp_lane.h"
#include "zp_feed.h"
#include "zp_watchers.h"
#include "zp_store.h"
#include "zp_reaper.h"

//  Set errno and return the value: `return zp__fail (EINVAL, -1);`
#define zp__fail(err, value)    (errno = (err), (value))

//  Descriptors that must be free before zproc makes a zmq socket or an
//  actor: a socket takes one, the first socket of a process's context about
//  six (libzmq's I/O and reaper threads), an actor's pipe two
#define ZP_FD_HEADROOM          8

//  0 when at least `wanted` descriptors are free in this process (it makes
//  and closes that many); -1 with errno EMFILE when they are not
int
    zp__fd_headroom (int wanted);

//  A new zsock of type, or NULL with errno EMFILE when no descriptor is
//  left for it. Every socket zproc makes comes from here: CZMQ 4.2's
//  zsock_new asserts when libzmq cannot make a socket.
zsock_t *
    zp__sock_new (int type);

//  zactor_new, or NULL with errno EMFILE when no descriptor is left for
//  its pipe (CZMQ 4.2's zactor_new asserts then too)
zactor_t *
    zp__actor_new (zactor_fn *fn, void *args);

//  A pidfd for a child's pid (Linux 5.3 and later), readable when it
//  exits; -1 with errno (ENOSYS where the kernel or libc has none)
int
    zp__pidfd_open (pid_t pid);

//  Default timeout of a plain state call, msecs: ZPROC_TIMEOUT from the
//  environment, else this
#define ZP_DEFAULT_TIMEOUT      5000


//  ---------------------------------------------------------------------------
//  zp_state internals (zp_state.c)

//  Make a DEALER socket connected to the store the handle talks to, set up
//  as the handle is (CURVE, linger), and *monitor_p, a socket that reports
//  the events of its connection (see zp__monitor_event). NULL with errno.
zsock_t *
    zp__state_socket (zp_state_t *self, zsock_t **monitor_p);

//  Read one event from a connection's monitor: EACCES when the store refused
//  the handshake, ENOTCONN when the connection was lost, 0 when it is up
int
    zp__monitor_event (zsock_t *monitor);

//  The handle's plain-call timeout, msecs (-1 = forever)
int
    zp__state_timeout (zp_state_t *self);

//  Send a request to the store on sock: the header, then nparts frames.
//  Returns 0, or -1 with errno: ENOTCONN when the socket stays full until
//  deadline, EINTR.
int
    zp__request_send (void *sock, const zp_header_t *header, const zp_part_t *parts,
                      size_t nparts, int64_t deadline);

//  Wait until sock is readable (ZMQ_POLLIN) or writable (ZMQ_POLLOUT), or
//  other (may be NULL) is readable, or deadline (zclock_mono msecs, -1
//  never). Returns 1 when sock is ready, 2 when other is readable, 0 timed
//  out, -1 with EINTR (SIGINT/SIGTERM: zsys_interrupted).
int
    zp__wait_socket (void *sock, short events, void *other, int64_t deadline);

//  Deadline for a timeout in msecs: -1 stays -1 (never)
int64_t
    zp__deadline (int timeout_ms);

//  A fresh "inproc://..." endpoint named what, unique for the life of the
//  process (a counter, never an address: a name libzmq still holds for a
//  closed socket is not handed out again). The caller frees it; NULL with
//  ENOMEM.
char *
    zp__inproc_endpoint (const char *what);

//  Msecs left until deadline, at least 0; -1 for no deadline
int
    zp__remaining (int64_t deadline);

//  True when a name is a valid worker name: [A-Za-z0-9._-]{1,ZP_NAME_MAX}
bool
    zp__name_valid (const char *name);

//  The default timeout of a handle: ZPROC_TIMEOUT, else ZP_DEFAULT_TIMEOUT
int
    zp__default_timeout (void);

//  Make a state handle connected to endpoint. server_public_key NULL: no
//  CURVE; else cert is the client certificate to present (copied), or NULL
//  for a fresh one. lane_fd, when not -1, is the handle's end of a direct
//  lane to the store (zp_lane.h), which the handle takes (also when this
//  fails): its calls go there; its watches still connect to endpoint with
//  the keys. NULL with errno as zp_state_connect.
zp_state_t *
    zp__state_new (const char *endpoint, const char *server_public_key, zcert_t *cert,
                   int timeout_ms, int lane_fd);

//  zp__state_new, reading the store's published sequence number in shared
//  (zp__state_share; NULL: it cannot) from the start. When seq is not NULL
//  the handle's watchers start after *seq, a number the store published in
//  shared (s_commit publishes before it replies, so it covers every write
//  that had returned when it was read), and a handle on a lane makes no
//  HELLO round trip: a lane the store could not adopt fails on the first
//  call instead (ENOTCONN).
zp_state_t *
    zp__state_new_shared (const char *endpoint, const char *server_public_key, zcert_t *cert,
                          int timeout_ms, int lane_fd, zp_shared_t *shared,
                          const uint64_t *seq);

//  A new direct lane to the store, asked for on the handle's own lane (LANE
//  request, the descriptor passed with SCM_RIGHTS): the descriptor of our
//  end (close-on-exec, marked with zp__lane_fd_mark), for zp__state_new or
//  a worker about to be forked. -1 with errno: EINVAL when the handle has
//  no lane (the caller uses the endpoint instead), ENOBUFS when the store
//  serves too many lanes, EMFILE, ENOTCONN, EINTR.
int
    zp__state_lane (zp_state_t *self);

//  Let a handle read the store's published sequence number (shared NULL:
//  it cannot), and the page a handle reads (NULL when none)
void
    zp__state_share (zp_state_t *self, zp_shared_t *shared);
zp_shared_t *
    zp__state_shared (zp_state_t *self);

//  True when the handle is a read-only view (a snapshot, a predicate's view)
bool
    zp__state_is_view (zp_state_t *self);

//  One write request on a handle: EACCES on a view; else as a plain call.
//  *frame_p gets the reply's first payload frame, borrowed until the next
//  call on the handle (NULL when the reply has none). 0, or -1 with errno.
int
    zp__state_write (zp_state_t *self, int command, const zp_part_t *parts, size_t nparts,
                     zframe_t **frame_p);

//  Write a reserved key ($proc/..., $pool/...) as zproc itself, from a
//  process that has no inproc way to the store (a worker's own context).
//  Returns 0, or -1 with errno as zp_state_set_str.
int
    zp__state_notice (zp_state_t *self, const char *key, const char *value);

//  ---------------------------------------------------------------------------
//  zp_watch internals (zp_watch.c)

//  zp_watch_next_bytes, and *more_p (may be NULL) tells whether more changes
//  of the same batch follow this one
int
    zp__watch_next (zp_watch_t *self, char **key_p, zchunk_t **value_p, bool *more_p,
                    int timeout_ms);

//  Watch from an explicit baseline: every change after seq under prefix.
zp_watch_t *
    zp__watch_new_from (zp_state_t *state, const char *prefix, uint64_t seq);

//  ---------------------------------------------------------------------------
//  Mailboxes (zp_worker.c)

//  Kinds of mailbox messages, in their envelope
#define ZP_MAIL_MESSAGE     'M'
#define ZP_MAIL_REQUEST     'Q'
#define ZP_MAIL_REPLY       'R'
#define ZP_MAIL_CREDIT      'C'     //  To a reply box: the call id is a grant

//  The file of a box ("mbox" or "reply") of worker name in dir; the caller
//  frees it
char *
    zp__mailbox_path (const char *dir, const char *box, const char *name);

//  Remove both box files of worker name in dir: a box without its worker
//  would swallow what is sent to it, and a name's next worker binds them
//  again
void
    zp__mailbox_remove (const char *dir, const char *name);

//  Make a PUSH socket connected to a box ("mbox" or "reply") of worker
//  name, with CURVE when keys is not NULL. NULL with errno on failure.
zsock_t *
    zp__mailbox_connect (const char *dir, const char *box, const char *name, zp_keys_t *keys);

//  Send *msg_p on a PUSH socket, as from, in an envelope of kind, flags
//  and call id, waiting at most timeout_ms for room (0: never waits, and
//  then never fails with EINTR). Destroys the message and nulls *msg_p on
//  success; on failure the caller keeps it. Returns 0, or -1 with EAGAIN
//  (no room until the timeout) or EINTR (SIGINT/SIGTERM while it waited).
int
    zp__mailbox_send (zsock_t *push, const char *from, int kind, int flags, uint32_t id,
                      zmsg_t **msg_p, int timeout_ms);

//  Read one message from a worker's mailbox and drop it, granting its
//  credit back to its sender (so a sender waiting for credit goes on)
void
    zp__worker_discard (zp_worker_t *self);

//  The context a worker was made in: its directory, store and keys
const char *
    zp__worker_dir (zp_worker_t *self);
const char *
    zp__worker_endpoint (zp_worker_t *self);
zp_keys_t *
    zp__worker_keys (zp_worker_t *self);

//  Bind the socket file of worker name's mailbox in dir and listen on it
//  (libzmq's ipc transport, without libzmq: the worker's PULL socket takes
//  the descriptor over, see zp__worker_start). From then on a sender's
//  connection and what it sends wait for the worker. The descriptor
//  (close-on-exec, non-blocking), or -1 with errno (EMFILE, ENAMETOOLONG).
int
    zp__mailbox_listen (const char *dir, const char *name);

//  Make a worker (its state handle; its mailbox comes with
//  zp__worker_start). NULL with errno. lane_fd: the worker's end of its
//  direct lane to the store, or -1 to reach the store at endpoint; shared
//  and seq: the store's published sequence number and where the handle's
//  watchers start (see zp__state_new_shared; both may be NULL); mailbox_fd:
//  its mailbox's listening socket (zp__mailbox_listen), or -1 to bind its
//  own; control_fd: its end of its control channel (zp__ctx_fork_all), on
//  which its parent may stop it, or -1. The descriptors are taken, also
//  on failure.
zp_worker_t *
    zp__worker_new (const char *name, const char *dir, const char *endpoint,
                    zp_keys_t *keys, int lane_fd, zp_shared_t *shared,
                    const uint64_t *seq, int mailbox_fd, int control_fd);

//  Stop a forked worker, the same to it either way: on its control
//  channel (control_fd, or -1) while it has no mailbox, else with $TERM in
//  its mailbox (dir, name, keys), whose PUSH socket goes to *term_p: the
//  caller keeps it until the worker has gone (it holds the message), then
//  destroys it (*term_p is NULL when the channel took the stop). 0, or -1
//  with errno when neither way could send.
int
    zp__worker_stop (int control_fd, const char *dir, const char *name, zp_keys_t *keys,
                     zsock_t **term_p);

//  Make the worker's mailbox socket (and with it libzmq's context and
//  threads), on the descriptor given to zp__worker_new, on which mail may
//  wait already; before any other use of the worker. 0, or -1 with errno
//  (EMFILE, ENOMEM).
int
    zp__worker_start (zp_worker_t *self);

//  In the child: destroy the worker object and its sockets.
void
    zp__worker_destroy (zp_worker_t **self_p);

//  ---------------------------------------------------------------------------
//  zp_proc internals (zp_proc.c); handles are owned by the context

zp_proc_t *
    zp__proc_new (zp_ctx_t *ctx, const char *name, pid_t pid);
void
    zp__proc_destroy (zp_proc_t **self_p);
//  Record the exit status (exit code or 128+signal) of a reaped worker;
//  stopped when its context stopped it. True when the exit is a failure of
//  the worker's own: a status other than 0, not caused by the context.
bool
    zp__proc_set_exited (zp_proc_t *self, int status, bool stopped);
//  The context stops this worker itself: its exit is not a failure
void
    zp__proc_set_stopped (zp_proc_t *self);
//  True when the handle is of the running worker pid; no events applied
bool
    zp__proc_is (zp_proc_t *self, pid_t pid);
//  True once the worker has exited for good; no events applied
bool
    zp__proc_exited (zp_proc_t *self);
//  A restarted worker has a new pid
void
    zp__proc_set_pid (zp_proc_t *self, pid_t pid);

//  ---------------------------------------------------------------------------
//  zp_ctx internals (zp_ctx.c)

//  A worker's own context, for the workers it spawns: it shares the
//  worker's store, directory and keys (borrowed, not copied), names its
//  unnamed workers "NAME.N", and its main is the worker. NULL with errno.
zp_ctx_t *
    zp__ctx_new_nested (zp_worker_t *owner);

//  How a worker is supervised: what the reaper needs to restart it
typedef struct {
    zp_worker_fn *fn;           //  The worker's body
    void *props;                //  Its argument
    zp_restart_t policy;        //  When to restart it
    zp_strategy_t strategy;     //  The group's strategy
    int grace;                  //  Msecs between $TERM, SIGTERM and SIGKILL
    int max_restarts;           //  Intensity: at most this many restarts...
    int period;                 //  ...within this many msecs
    int backoff_initial;        //  First wait before a restart, msecs
    int backoff_max;            //  Longest wait before a restart, msecs
} zp_supervision_t;

//  One worker for zp__ctx_fork_all: what it runs, and how its fork went
typedef struct {
    const char *name;           //  In: its name (the caller's)
    zp_worker_fn *fn;           //  In: its body...
    void *props;                //  ...and its argument
    pid_t pid;                  //  Out: its pid, or -1 (then err says why)
    int err;                    //  Out: 0, or the errno of its failure
    int control_fd;             //  Out: our end of its control channel, a
                                //  lane descriptor (close it with
                                //  zp__lane_fd_close); -1 on failure
    int child_control;          //  Made before the fork, closed after it:
    int lane [2];               //  its end of the control channel, its lane
    int mailbox;                //  (ours and its), its mailbox's socket
} zp_fork_t;

//  Fork count workers of ctx. Each child reports "ready" or an errno on its
//  control channel (zp__ctx_await_ready). In batches (of 32): everything
//  the workers need is made first, then they are forked one after the
//  other with nothing else done in between, then what each fork leaves to
//  do here is done: each page this process writes while a child still
//  shares it is copied (with a TLB flush on every CPU another of our
//  threads ran on), so the work between two forks is what a batch of
//  workers costs beyond the forks. A worker holds three descriptors more
//  than it keeps until its batch is forked.
//  Used by zp_ctx_spawn, zp_ctx_start_all and pools.
void
    zp__ctx_fork_all (zp_ctx_t *ctx, zp_fork_t *forks, size_t count);

//  zp__ctx_fork_all of one worker, for the reaper's restarts: the child's
//  pid (our end of its control channel goes to *control_fd), or -1 with
//  errno
pid_t
    zp__ctx_fork (zp_ctx_t *ctx, const char *name, zp_worker_fn *fn, void *props,
                  int *control_fd);

//  Wait for a forked worker's report on control_fd, which stays open: its
//  owner stops the worker with it (zp__worker_stop) or closes it, which
//  the worker ignores. Returns 0 when it is ready, else the errno that
//  stopped it.
int
    zp__ctx_await_ready (int control_fd);

//  The context's socket directory
const char *
    zp__ctx_dir (zp_ctx_t *self);

//  True when name is a valid worker name (zp__name_valid) that no worker of
//  any context on this store has; a name left by a worker that was killed
//  with its supervisor is free again
bool
    zp__ctx_name_free (zp_ctx_t *self, const char *name);

//  The context's grace period between $TERM, SIGTERM and SIGKILL, msecs
int
    zp__ctx_grace (zp_ctx_t *self);

//  Write a reserved key ("$...") of the state as zproc itself: without
//  waiting for the store in the parent, with a round trip in a worker's
//  own context
void
    zp__ctx_publish (zp_ctx_t *self, const char *key, const char *value);

//  Attach an object to the context: zp_ctx_destroy destroys it, with
//  destructor (&item), before it stops the workers. Returns 0, or -1 with
//  ENOMEM. zp__ctx_detach forgets it (nothing when it is not attached).
int
    zp__ctx_attach (zp_ctx_t *self, void *item, czmq_destructor *destructor);
void
    zp__ctx_detach (zp_ctx_t *self, void *item);

//  Wait for the next reaper event (a worker exited) until deadline and apply
//  it to its handle. Returns 0 when an event was applied, -1 with ETIMEDOUT
//  or EINTR.
int
    zp__ctx_wait_event (zp_ctx_t *self, int64_t deadline);

#endif
