/*  =========================================================================
    zp_reaper - the reaper actor
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/syscall.h>

//  How often children without a pidfd are polled, msecs
#define POLL_INTERVAL   50

typedef struct {
    pid_t pid;                  //  The child; 0 while it waits for a restart
    int pidfd;                  //  Readable when it exits; -1 when unsupported
    char *name;                 //  Its worker name
    void *handle;               //  Its place in the children list
    zp_supervision_t supervision;   //  How to restart it
    int64_t started;            //  When it last started, zclock_mono
    int64_t restart_at;         //  When to restart it, while pid is 0
    int backoff;                //  Wait before the next restart, msecs
    int64_t *restarts;          //  Ring of recent restart times
    size_t restarts_next;       //  Next slot in the ring
    bool stopped;               //  Did we stop it ($TERM, signals)? Then its
                                //  exit is no failure of its own
} child_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *events;            //  Exit events to the context
    zsock_t *sys;               //  Notices to the store ($proc/...)
    zpoller_t *poller;          //  Polls pipe and pidfds
    bool terminated;            //  Did our owner ask us to quit?
    bool stopping;              //  Stopping: no more restarts
    char *dir;                  //  Socket directory
    zp_keys_t *keys;            //  CURVE keys for the mailboxes, or NULL
    zp_ctx_t *ctx;              //  The context, to fork restarted workers
    zlistx_t *children;         //  child_t, owned
    size_t unwatched;           //  Children without a pidfd: polled instead
} self_t;


//  --------------------------------------------------------------------------
//  Children

static void
s_child_destroy (child_t **self_p)
{
    child_t *self = *self_p;
    if (self) {
        if (self->pidfd >= 0)
            close (self->pidfd);
        free (self->restarts);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

static int
s_pidfd_open (pid_t pid)
{
#if defined (SYS_pidfd_open)
    return (int) syscall (SYS_pidfd_open, pid, 0);
#else
    return zp__fail (ENOSYS, -1);
#endif
}

//  Watch a child's pid: through a pidfd, or by polling
static void
s_watch (self_t *self, child_t *child, pid_t pid)
{
    child->pid = pid;
    child->started = zclock_mono ();
    child->pidfd = s_pidfd_open (pid);
    if (child->pidfd >= 0)
        zpoller_add (self->poller, &child->pidfd);
    else
        self->unwatched++;
}

static void
s_unwatch (self_t *self, child_t *child)
{
    if (child->pidfd >= 0) {
        zpoller_remove (self->poller, &child->pidfd);
        close (child->pidfd);
        child->pidfd = -1;
    }
    else
        self->unwatched--;
    child->pid = 0;
}


//  --------------------------------------------------------------------------
//  Publish a notice about a worker in the state: $proc/NAME/field

static void
s_publish (self_t *self, const char *name, const char *field, const char *value)
{
    if (!self->sys)
        return;                 //  A worker's own context has no store
    char *key = zsys_sprintf ("%s%s/%s", ZP_PROC_PREFIX, name, field);
    if (key)
        zsock_send (self->sys, "ss", key, value);
    zstr_free (&key);
}

static void
s_publish_int (self_t *self, child_t *child, const char *field, int value)
{
    char text [16];
    snprintf (text, sizeof text, "%d", value);
    s_publish (self, child->name, field, text);
}


//  --------------------------------------------------------------------------
//  Constructor and destructor

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->sys);
    zsock_destroy (&self->events);
    zlistx_destroy (&self->children);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (zsock_t *pipe, zp_reaper_args_t *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->dir = strdup (args->dir);
    self->keys = args->keys;
    self->ctx = args->ctx;
    self->children = zlistx_new ();
    self->events = zsock_new (ZMQ_PAIR);
    self->sys = args->sys? zsock_new (ZMQ_PUSH): NULL;
    if (!self->dir || !self->children || !self->events || (args->sys && !self->sys))
        goto failed;
    zlistx_set_destructor (self->children, (czmq_destructor *) s_child_destroy);
    zsock_set_sndhwm (self->events, 0);
    if (zsock_bind (self->events, "%s", args->events) < 0)
        goto failed;
    if (self->sys) {
        zsock_set_sndhwm (self->sys, 0);
        if (zsock_connect (self->sys, "%s", args->sys) < 0)
            goto failed;
    }
    self->poller = zpoller_new (self->pipe, NULL);
    if (!self->poller)
        goto failed;
    zpoller_set_nonstop (self->poller, true);
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    s_self_destroy (&self);
    return zp__fail (saved, NULL);
}


//  --------------------------------------------------------------------------
//  Restart decisions

//  True when the policy asks for a restart after this exit
static bool
s_wants_restart (self_t *self, child_t *child, int code)
{
    zp_restart_t policy = child->supervision.policy;
    return !self->stopping
        && (policy == ZP_RESTART_PERMANENT || (policy == ZP_RESTART_TRANSIENT && code != 0));
}

//  Count a restart against the intensity; false when it is exhausted
static bool
s_within_intensity (child_t *child, int64_t now)
{
    size_t max = (size_t) child->supervision.max_restarts;
    if (max == 0)
        return false;
    if (!child->restarts) {
        child->restarts = (int64_t *) calloc (max, sizeof (int64_t));
        if (!child->restarts)
            return false;
    }
    //  The oldest of the last max restarts: too recent means too many
    int64_t oldest = child->restarts [child->restarts_next];
    if (oldest && now - oldest < child->supervision.period)
        return false;
    child->restarts [child->restarts_next] = now;
    child->restarts_next = (child->restarts_next + 1) % max;
    return true;
}

//  The child is gone for good: tell the state and the context
static void
s_child_gone (self_t *self, child_t *child, pid_t pid, int code, bool given_up)
{
    s_publish_int (self, child, "code", code);
    s_publish (self, child->name, "status", given_up? "failed": code > 128? "killed": "exited");
    zsock_send (self->events, "iiii", (int) pid, code, 0, child->stopped);
    //  The cursor, if here, steps back: iterating callers go on safely
    zlistx_delete (self->children, child->handle);
}

//  Child pid exited with code (it is no longer watched): restart it
//  later, or let it go
static void
s_child_exited (self_t *self, child_t *child, pid_t pid, int code)
{
    //  A dead worker's boxes would swallow messages: senders must see it
    //  is gone (a restarted worker binds them again)
    const char *boxes [] = { "mbox", "reply" };
    for (size_t index = 0; index < 2; index++) {
        char *path = zp__mailbox_path (self->dir, boxes [index], child->name);
        if (path)
            unlink (path);
        zstr_free (&path);
    }
    if (!s_wants_restart (self, child, code)) {
        s_child_gone (self, child, pid, code, false);
        return;
    }
    int64_t now = zclock_mono ();
    if (!s_within_intensity (child, now)) {
        zsys_warning ("zproc: worker %s restarted too often, giving up", child->name);
        s_child_gone (self, child, pid, code, true);
        return;
    }
    //  A worker that ran for a whole period starts its backoff afresh
    if (now - child->started >= child->supervision.period)
        child->backoff = child->supervision.backoff_initial;
    child->restart_at = now + child->backoff;
    child->backoff = child->backoff * 2 < child->supervision.backoff_max
                   ? child->backoff * 2: child->supervision.backoff_max;
    s_publish_int (self, child, "code", code);
    s_publish (self, child->name, "status", "restarting");
    //  The context learns the new pid once the worker is back
    child->pid = -pid;
}

//  Restart a child whose time has come
static void
s_restart (self_t *self, child_t *child)
{
    pid_t old_pid = -child->pid;
    int ready_fd;
    pid_t pid = zp__ctx_fork (self->ctx, child->name, child->supervision.fn,
                              child->supervision.props, &ready_fd);
    if (pid < 0) {
        //  Could not fork: count it as one more failed start
        child->started = zclock_mono ();
        s_child_exited (self, child, old_pid, 255);
        return;
    }
    s_watch (self, child, pid);
    s_publish_int (self, child, "pid", pid);
    s_publish (self, child->name, "status", "starting");
    zsock_send (self->events, "iiii", (int) old_pid, 0, (int) pid, 0);
    if (zp__ctx_await_ready (ready_fd) == 0)
        s_publish (self, child->name, "status", "running");
    //  Else it is dying: its exit will be reaped as usual
}


//  --------------------------------------------------------------------------
//  Reap the children that have exited; restart those whose time has come

static void
s_reap (self_t *self)
{
    int64_t now = zclock_mono ();
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children)) {
        if (child->pid > 0) {
            int status;
            pid_t pid;
            do
                pid = waitpid (child->pid, &status, WNOHANG);
            while (pid < 0 && errno == EINTR);
            //  ECHILD: someone else reaped it (SIGCHLD ignored); we cannot
            //  know how it ended
            if (pid == child->pid || (pid < 0 && errno == ECHILD)) {
                int code = pid < 0? 255
                         : WIFEXITED (status)? WEXITSTATUS (status)
                         : WIFSIGNALED (status)? 128 + WTERMSIG (status): 255;
                pid = child->pid;
                s_unwatch (self, child);
                s_child_exited (self, child, pid, code);
            }
        }
        else
        if (self->stopping)
            s_child_gone (self, child, -child->pid, 0, false);
        else
        if (child->restart_at <= now)
            s_restart (self, child);
    }
}

//  How long the poller may sleep: until the next restart, or the next poll
//  of children without a pidfd
static int
s_timeout (self_t *self, int64_t deadline)
{
    int timeout = zp__remaining (deadline);
    if (self->unwatched && (timeout < 0 || timeout > POLL_INTERVAL))
        timeout = POLL_INTERVAL;
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->pid < 0) {
            int64_t wait = child->restart_at - zclock_mono ();
            wait = wait > 0? wait: 0;
            if (timeout < 0 || wait < timeout)
                timeout = (int) wait;
        }
    return timeout;
}


//  --------------------------------------------------------------------------
//  Stop every child: $TERM, SIGTERM, SIGKILL, a grace period between each

//  Wait until every child has exited or deadline, reaping as they go
static void
s_wait_all (self_t *self, int64_t deadline)
{
    zpoller_remove (self->poller, self->pipe);
    while (zlistx_size (self->children) && zclock_mono () < deadline) {
        zpoller_wait (self->poller, s_timeout (self, deadline));
        s_reap (self);
    }
    zpoller_add (self->poller, self->pipe);
}

static void
s_signal_all (self_t *self, int signum)
{
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->pid > 0)
            kill (child->pid, signum);
}

static void
s_stop (self_t *self, int grace)
{
    self->stopping = true;
    //  The $TERM sockets live until every child is gone, then whatever
    //  they still hold (for children that left first) is discarded
    zlistx_t *terms = zlistx_new ();
    if (terms)
        zlistx_set_destructor (terms, (czmq_destructor *) zsock_destroy);
    for (child_t *child = (child_t *) zlistx_first (self->children); child && terms;
         child = (child_t *) zlistx_next (self->children)) {
        child->stopped = true;
        if (child->pid <= 0)
            continue;
        zsock_t *mailbox = zp__mailbox_connect (self->dir, "mbox", child->name, self->keys);
        zmsg_t *term = zmsg_new ();
        if (mailbox && term && zmsg_addstr (term, "$TERM") == 0)
            zp__mailbox_send (mailbox, "main", ZP_MAIL_MESSAGE, 0, &term, 0);
        zmsg_destroy (&term);
        if (mailbox) {
            zsock_set_linger (mailbox, 0);
            zlistx_add_end (terms, mailbox);
        }
    }
    s_reap (self);              //  Those waiting for a restart go now
    s_wait_all (self, zclock_mono () + grace);
    if (zlistx_size (self->children)) {
        s_signal_all (self, SIGTERM);
        s_wait_all (self, zclock_mono () + grace);
    }
    if (zlistx_size (self->children)) {
        s_signal_all (self, SIGKILL);
        //  SIGKILL cannot be ignored: wait as long as it takes
        s_wait_all (self, INT64_MAX);
    }
    zlistx_destroy (&terms);
}


//  --------------------------------------------------------------------------
//  Commands from the owner

static void
s_track (self_t *self, int pid, char *name, zp_supervision_t *supervision)
{
    child_t *child = (child_t *) zmalloc (sizeof (child_t));
    if (!child) {
        zsys_error ("zproc reaper: out of memory, pid %d is not tracked", pid);
        free (name);
        return;
    }
    child->name = name;
    child->supervision = *supervision;
    child->backoff = supervision->backoff_initial;
    child->handle = zlistx_add_end (self->children, child);
    s_watch (self, child, pid);
    s_publish_int (self, child, "pid", pid);
    s_publish (self, child->name, "status", "starting");
}

static child_t *
s_lookup (self_t *self, const char *name)
{
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (streq (child->name, name))
            return child;
    return NULL;
}

static void
s_handle_pipe (self_t *self)
{
    zmsg_t *request = zmsg_recv (self->pipe);
    char *command = request? zmsg_popstr (request): NULL;
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "TRACK")) {
        char *pid = zmsg_popstr (request);
        char *name = zmsg_popstr (request);
        zframe_t *frame = zmsg_pop (request);
        zp_supervision_t *supervision = NULL;
        if (pid && name && frame && zframe_size (frame) == sizeof (supervision)) {
            memcpy (&supervision, zframe_data (frame), sizeof (supervision));
            s_track (self, atoi (pid), name, supervision);
            name = NULL;
        }
        zframe_destroy (&frame);
        zstr_free (&pid);
        zstr_free (&name);
        zsock_signal (self->pipe, 0);
    }
    else
    if (streq (command, "READY")) {
        char *name = zmsg_popstr (request);
        child_t *child = name? s_lookup (self, name): NULL;
        if (child)
            s_publish (self, child->name, "status", "running");
        zstr_free (&name);
    }
    else
    if (streq (command, "REGISTER")) {
        char *name = zmsg_popstr (request);
        if (name)
            s_publish (self, name, "status", "registered");
        zstr_free (&name);
    }
    else
    if (streq (command, "STOP")) {
        char *grace = zmsg_popstr (request);
        s_stop (self, grace? atoi (grace): 0);
        zstr_free (&grace);
        zsock_signal (self->pipe, 0);
    }
    else
        zsys_error ("zproc reaper: invalid pipe command '%s'", command);
    zstr_free (&command);
    zmsg_destroy (&request);
}


//  --------------------------------------------------------------------------
//  The actor

void
zp_reaper_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (zp_reaper_args_t *) args);
    //  The start-up status before zsock_signal, which may change errno
    int status = self? 0: errno;
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", status);
    if (!self)
        return;
    while (!self->terminated) {
        void *which = zpoller_wait (self->poller, s_timeout (self, -1));
        if (which == self->pipe)
            s_handle_pipe (self);
        else
            s_reap (self);
    }
    s_self_destroy (&self);
}
