/*  =========================================================================
    zp_proc - the parent's handle to a worker process

    Handles are owned by the context that spawned the worker; they stay
    valid, with the worker's exit status, until the context is destroyed.
    =========================================================================
*/

#ifndef ZP_PROC_H_INCLUDED
#define ZP_PROC_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  The worker's process id; -1 with EINVAL when self is NULL.
pid_t
    zp_proc_pid (zp_proc_t *self);

//  The worker's name, owned by the handle; NULL with EINVAL on NULL self.
const char *
    zp_proc_name (zp_proc_t *self);

//  Send a message into the worker's mailbox, from "main"; takes ownership
//  of *msg_p and nulls it on success. Once it returned 0 the message
//  reaches the worker as long as the worker lives and reads (see
//  zp_worker.h). Returns 0, or -1 with errno as zp_worker_send: EINVAL
//  (NULL argument), ESRCH (the worker has exited), EAGAIN ("main" had
//  ZP_MAILBOX_BOUND messages unread in its mailbox for the whole send
//  timeout), EINTR, ENOMEM, ENOTCONN. On failure the caller still owns the
//  message.
int
    zp_proc_send (zp_proc_t *self, zmsg_t **msg_p);

//  Call the worker from the parent ("main"): zp_worker_call (zp_ctx_main
//  (ctx), name, msg_p, timeout_ms). Returns the reply or NULL with errno as
//  zp_worker_call.
zmsg_t *
    zp_proc_call (zp_proc_t *self, zmsg_t **msg_p, int timeout_ms);

//  Wait until the worker exits; timeout_ms -1 waits forever, 0 polls.
//  Returns its exit code, or 128+signal when it died by a signal; -1 with
//  ETIMEDOUT, EINTR (SIGINT/SIGTERM) or EINVAL.
int
    zp_proc_wait (zp_proc_t *self, int timeout_ms);

//  Send signum to the worker. Returns 0, or -1 with EINVAL or ESRCH (it
//  has already exited and been reaped).
int
    zp_proc_kill (zp_proc_t *self, int signum);

//  True while the worker has not been reaped.
bool
    zp_proc_running (zp_proc_t *self);

#ifdef __cplusplus
}
#endif

#endif
