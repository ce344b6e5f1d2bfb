/*  =========================================================================
    zp_worker - inside a worker process

    The worker object is made by zp_ctx_spawn in the child and passed to the
    worker function; it owns the worker's state handle and mailbox. The
    parent has one too, named "main": zp_ctx_main.

    Mailboxes are addressed by worker name and keep each sender's order. A
    mailbox message is the zmsg_t that was sent; a single-frame "$TERM"
    means "shut down now". A message whose send returned 0 reaches its
    receiver as long as the receiver lives and reads, at whatever pace,
    even when the sender exits at once (its exit waits, at most the state
    handle's timeout, until its mail has reached the receiver's process).
    The bound is per sender: each sender has at most ZP_MAILBOX_BOUND
    messages unread in a mailbox (credit the receiver grants back as it
    reads); past that, send waits up to the state handle's timeout
    (zp_state_set_timeout, default 5 s) and fails with EAGAIN. Messages to
    a worker that has exited are refused (ESRCH); what was sent to a worker
    that dies unread dies with it. zp_worker_call tells a sender that its
    messages were read: the answer comes after the receiver has read every
    message sent before the request.
    =========================================================================
*/

#ifndef ZP_WORKER_H_INCLUDED
#define ZP_WORKER_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Messages one sender can have unread in one mailbox
#define ZP_MAILBOX_BOUND    1000

//  This worker's state handle, owned by the worker; NULL with EINVAL on
//  NULL self.
zp_state_t *
    zp_worker_state (zp_worker_t *self);

//  This worker's name, owned by the worker; NULL with EINVAL on NULL self.
const char *
    zp_worker_name (zp_worker_t *self);

//  Next message from the mailbox; timeout_ms -1 waits forever, 0 polls.
//  The caller owns the message. NULL with errno: ETIMEDOUT, EINTR ($TERM
//  received, or SIGINT/SIGTERM), EINVAL, EMFILE (the mailbox's socket, made
//  on first need, could not be made: no descriptor left).
zmsg_t *
    zp_worker_recv (zp_worker_t *self, int timeout_ms);

//  The name of the sender of the message last returned by zp_worker_recv
//  ("main" for the parent), owned by the worker; NULL before any message.
const char *
    zp_worker_sender (zp_worker_t *self);

//  Send a message to the worker named to ("main": the parent); takes
//  ownership of *msg_p and nulls it on success. A worker registered but
//  not started yet, or being restarted, gets it when it starts. Returns 0,
//  or -1 with errno: EINVAL (bad argument), ENOENT (no worker of that
//  name), ESRCH (it has exited, also while the send waited), EAGAIN (we
//  had ZP_MAILBOX_BOUND messages unread in its mailbox for the whole send
//  timeout), EINTR (SIGINT/SIGTERM), ENOMEM, EMFILE, and what a state call gives
//  when the store must be asked whether it lives (ENOTCONN). On failure
//  the caller keeps the message.
int
    zp_worker_send (zp_worker_t *self, const char *to, zmsg_t **msg_p);

//  Call the worker named to: send *msg_p as a request (taking it, as
//  zp_worker_send does) and wait for its reply; timeout_ms -1 waits
//  forever. Returns the reply, which the caller destroys, or NULL with
//  errno: ETIMEDOUT, ESRCH (the callee died, or had died: reported as soon
//  as it happens, not after the timeout), and those of zp_worker_send.
//  Messages that arrive in the mailbox meanwhile wait there, in order.
zmsg_t *
    zp_worker_call (zp_worker_t *self, const char *to, zmsg_t **msg_p, int timeout_ms);

//  Answer the request last returned by zp_worker_recv; takes *msg_p and
//  nulls it on success. Returns 0, or -1 with errno: EINVAL (the last
//  message was not a request, or it was answered already), ESRCH (the
//  caller has gone), EAGAIN, EINTR.
int
    zp_worker_reply (zp_worker_t *self, zmsg_t **msg_p);

//  The mailbox socket, owned by the worker, for zpoller/zloop: readable when
//  a message waits. Read it with zp_worker_recv. A worker makes it on first
//  need; NULL with errno when it cannot (EMFILE), or EINVAL.
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
