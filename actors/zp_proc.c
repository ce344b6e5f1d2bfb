/*  =========================================================================
    zp_proc - the parent's handle to a worker process

    Exit statuses reach the handle as events from the reaper, which the
    context applies while someone waits (zp_proc_wait, zp_ctx_wait_all).
    =========================================================================
*/

#include "zp_classes.h"

struct _zp_proc_t {
    zp_ctx_t *ctx;              //  The context that spawned it
    char *name;                 //  Worker name
    pid_t pid;                  //  Process id
    bool exited;                //  Reaped?
    int status;                 //  Exit code or 128+signal, once reaped
    bool stopped;               //  Stopped by its context: no failure of its own
};


//  --------------------------------------------------------------------------
//  Constructor and destructor (the context owns handles)

zp_proc_t *
zp__proc_new (zp_ctx_t *ctx, const char *name, pid_t pid)
{
    zp_proc_t *self = (zp_proc_t *) zmalloc (sizeof (zp_proc_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->ctx = ctx;
    self->pid = pid;
    self->name = strdup (name);
    if (!self->name) {
        free (self);
        return zp__fail (ENOMEM, NULL);
    }
    return self;
}

void
zp__proc_destroy (zp_proc_t **self_p)
{
    zp_proc_t *self = *self_p;
    if (self) {
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

bool
zp__proc_is (zp_proc_t *self, pid_t pid)
{
    return !self->exited && self->pid == pid;
}

bool
zp__proc_exited (zp_proc_t *self)
{
    return self->exited;
}

void
zp__proc_set_pid (zp_proc_t *self, pid_t pid)
{
    self->pid = pid;
}

bool
zp__proc_set_exited (zp_proc_t *self, int status, bool stopped)
{
    self->exited = true;
    self->status = status;
    return status != 0 && !stopped && !self->stopped;
}

void
zp__proc_set_stopped (zp_proc_t *self)
{
    self->stopped = true;
}


//  Apply the exits the reaper has already reported, without waiting
static void
s_update (zp_proc_t *self)
{
    while (zp__ctx_wait_event (self->ctx, 0) == 0)
        ;
}


//  --------------------------------------------------------------------------
//  Accessors

pid_t
zp_proc_pid (zp_proc_t *self)
{
    if (!self)
        return zp__fail (EINVAL, -1);
    s_update (self);            //  A restarted worker has a new pid
    return self->pid;
}

const char *
zp_proc_name (zp_proc_t *self)
{
    return self? self->name: zp__fail (EINVAL, NULL);
}

bool
zp_proc_running (zp_proc_t *self)
{
    if (!self)
        return false;
    s_update (self);
    return !self->exited;
}


//  --------------------------------------------------------------------------
//  Send into its mailbox, or call it, as "main"

int
zp_proc_send (zp_proc_t *self, zmsg_t **msg_p)
{
    if (!self || !msg_p || !*msg_p)
        return zp__fail (EINVAL, -1);
    s_update (self);
    if (self->exited)
        return zp__fail (ESRCH, -1);
    return zp_worker_send (zp_ctx_main (self->ctx), self->name, msg_p);
}

zmsg_t *
zp_proc_call (zp_proc_t *self, zmsg_t **msg_p, int timeout_ms)
{
    if (!self || !msg_p || !*msg_p)
        return zp__fail (EINVAL, NULL);
    s_update (self);
    if (self->exited)
        return zp__fail (ESRCH, NULL);
    return zp_worker_call (zp_ctx_main (self->ctx), self->name, msg_p, timeout_ms);
}


//  --------------------------------------------------------------------------
//  Wait for its exit

int
zp_proc_wait (zp_proc_t *self, int timeout_ms)
{
    if (!self)
        return zp__fail (EINVAL, -1);
    int64_t deadline = zp__deadline (timeout_ms);
    while (!self->exited)
        if (zp__ctx_wait_event (self->ctx, deadline) < 0)
            return -1;
    return self->status;
}


//  --------------------------------------------------------------------------
//  Signal it

int
zp_proc_kill (zp_proc_t *self, int signum)
{
    if (!self)
        return zp__fail (EINVAL, -1);
    s_update (self);
    if (self->exited)
        return zp__fail (ESRCH, -1);
    //  Not reaped yet, so the pid is still ours even if it has just died
    return kill (self->pid, signum) == 0? 0: -1;
}
