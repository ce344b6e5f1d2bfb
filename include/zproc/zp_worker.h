/*  =========================================================================
    zp_worker - inside a worker process

    The worker object is made by zp_ctx_spawn in the child and passed to the
    worker function; it owns the worker's state handle and mailbox.
    A mailbox message is the zmsg_t that was sent; a single-frame "$TERM"
    means "shut down now".
    =========================================================================
*/

#ifndef ZP_WORKER_H_INCLUDED
#define ZP_WORKER_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  This worker's state handle, owned by the worker; NULL with EINVAL on
//  NULL self.
zp_state_t *
    zp_worker_state (zp_worker_t *self);

//  This worker's name, owned by the worker; NULL with EINVAL on NULL self.
const char *
    zp_worker_name (zp_worker_t *self);

//  Next message from the mailbox; timeout_ms -1 waits forever, 0 polls.
//  The caller owns the message. NULL with errno: ETIMEDOUT, EINTR ($TERM
//  received, or SIGINT/SIGTERM), EINVAL.
zmsg_t *
    zp_worker_recv (zp_worker_t *self, int timeout_ms);

//  The name of the sender of the message last returned by zp_worker_recv
//  ("main" for the parent), owned by the worker; NULL before any message.
const char *
    zp_worker_sender (zp_worker_t *self);

//  Send a message to the worker named to; takes ownership of *msg_p and
//  nulls it on success. Returns 0, or -1 with errno: EINVAL (bad argument),
//  ENOENT (no worker of that name in this context), EAGAIN (its mailbox
//  stayed full for the send timeout). On failure the caller keeps the
//  message.
int
    zp_worker_send (zp_worker_t *self, const char *to, zmsg_t **msg_p);

//  The mailbox socket, owned by the worker, for zpoller/zloop: readable when
//  a message waits. Read it with zp_worker_recv.
zsock_t *
    zp_worker_mailbox (zp_worker_t *self);

//  Spawn a worker of this worker (a nested process): it shares the same
//  state, and is stopped and reaped with this worker (and dies with it if
//  this worker is killed). name NULL: "NAME.N" after this worker's name.
//  Returns a handle owned by this worker, or NULL with errno as
//  zp_ctx_spawn.
zp_proc_t *
    zp_worker_spawn (zp_worker_t *self, const char *name, zp_worker_fn *fn, void *props);

//  This worker's own context, for the workers it spawns (made on first
//  use): zp_ctx_wait_all, zp_ctx_proc, the restart settings and the rest
//  work on it; it shares the parent's store and directory. Owned by the
//  worker: never destroy it. NULL with errno (EINVAL, ENOMEM, ENOTCONN).
zp_ctx_t *
    zp_worker_ctx (zp_worker_t *self);

#ifdef __cplusplus
}
#endif

#endif
