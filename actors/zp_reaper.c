/*  =========================================================================
    zp_reaper - the reaper actor
    =========================================================================
*/

#include "zp_classes.h"

//  How often children without a pidfd are polled, msecs
#define POLL_INTERVAL   50
//  How long a worker's own context waits for the store to take a notice
#define NOTICE_TIMEOUT  1000
//  A child parked for a group restart that has not been decided yet
#define NOT_YET         INT64_MAX

//  Recent restart times, counted against an intensity
typedef struct {
    int64_t *times;             //  Ring of max_restarts times, made on first use
    size_t next;                //  Next slot in the ring
} ring_t;

typedef struct {
    pid_t pid;                  //  The child; -(old pid) while it waits for a restart
    int pidfd;                  //  Readable when it exits; -1 when unsupported
    int control_fd;             //  Its control channel, to stop it; or -1
    char *name;                 //  Its worker name
    void *handle;               //  Its place in the children list
    zp_supervision_t supervision;   //  How to restart it
    int64_t started;            //  When it last started, zclock_mono
    int64_t restart_at;         //  When to restart it, while pid is 0
    int backoff;                //  Wait before the next restart, msecs
    ring_t restarts;            //  Its recent restarts (one_for_one)
    int restarted;              //  How many times it was restarted
    bool stopped;               //  Did we stop it ($TERM, signals)? Then its
                                //  exit is no failure of its own
    bool regroup;               //  Stopped for a group restart: it waits for
                                //  the group once it has exited
    bool trigger;               //  It died and asks for a group restart
    int code;                   //  Its last exit code
} child_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *events;            //  Exit events to the context
    zsock_t *sys;               //  Notices to the store ($proc/...)
    uint64_t *sys_sent;         //  Counted there (zp__store_notice)
    zmq_pollitem_t *items;      //  What s_wait polls: the pipe, the pidfds
    size_t items_max;           //  Room in items
    bool terminated;            //  Did our owner ask us to quit?
    bool stopping;              //  Stopping: no more restarts
    char *dir;                  //  Socket directory
    zp_keys_t *keys;            //  CURVE keys for the mailboxes, or NULL
    zp_ctx_t *ctx;              //  The context, to fork restarted workers
    zlistx_t *children;         //  child_t, owned, in spawn order
    zp_state_t *state;          //  Notices of a worker's own context, else NULL
    bool grouped;               //  The group settings below are known
    zp_strategy_t strategy;     //  The group's strategy
    int max_restarts;           //  Group intensity: at most this many restarts...
    int period;                 //  ...within this many msecs
    ring_t group_restarts;      //  Recent group restarts
    int grace;                  //  Msecs between $TERM, SIGTERM and SIGKILL
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
        zp__lane_fd_close (self->control_fd);
        free (self->restarts.times);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

//  Watch a child's pid: through a pidfd, or by polling
static void
s_watch (self_t *self, child_t *child, pid_t pid)
{
    child->pid = pid;
    child->started = zclock_mono ();
    child->pidfd = zp__pidfd_open (pid);
    if (child->pidfd < 0)
        self->unwatched++;
}

//  The child has exited: its pid and control channel go
static void
s_unwatch (self_t *self, child_t *child)
{
    if (child->pidfd >= 0) {
        close (child->pidfd);
        child->pidfd = -1;
    }
    else
        self->unwatched--;
    zp__lane_fd_close (child->control_fd);
    child->control_fd = -1;
    child->pid = 0;
}


//  --------------------------------------------------------------------------
//  Publish a notice about a worker in the state: $proc/NAME/field

static void
s_publish (self_t *self, const char *name, const char *field, const char *value)
{
    char *key = zsys_sprintf ("%s%s/%s", ZP_PROC_PREFIX, name, field);
    if (key && self->sys)
        zp__store_notice (self->sys, self->sys_sent, key, value);
    else
    if (key && self->state)
        zp__state_notice (self->state, key, value);
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
    free (self->items);
    zsock_destroy (&self->sys);
    zsock_destroy (&self->events);
    zlistx_destroy (&self->children);
    zp_state_destroy (&self->state);
    free (self->group_restarts.times);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (zsock_t *pipe, zp_reaper_args_t *args)
{
    int lane = args->lane;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    if (!self) {
        zp__lane_fd_close (lane);
        return NULL;
    }
    self->pipe = pipe;
    self->dir = strdup (args->dir);
    self->keys = args->keys;
    self->ctx = args->ctx;
    self->sys_sent = args->sys_sent;
    self->children = zlistx_new ();
    self->events = zp__sock_new (ZMQ_PAIR);
    self->sys = args->sys? zp__sock_new (ZMQ_PUSH): NULL;
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
    else {
        //  A worker's own context: notices go through a handle of ours. It
        //  connects with the patience of any handle (a loaded machine can
        //  take more than a notice's timeout to answer its HELLO)
        self->state = zp__state_new (args->store, args->keys? zcert_public_txt (args->keys->store)
                                                            : NULL,
                                     args->keys? args->keys->client: NULL,
                                     zp__default_timeout (), lane);
        lane = -1;
        if (!self->state)
            goto failed;
        zp_state_set_timeout (self->state, NOTICE_TIMEOUT);
    }
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    zp__lane_fd_close (lane);
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

//  Count a restart against an intensity of max restarts in period msecs;
//  false when it is exhausted
static bool
s_within_intensity (ring_t *ring, int max, int period, int64_t now)
{
    if (max <= 0)
        return false;
    if (!ring->times) {
        ring->times = (int64_t *) calloc ((size_t) max, sizeof (int64_t));
        if (!ring->times)
            return false;
    }
    //  The oldest of the last max restarts: too recent means too many
    int64_t oldest = ring->times [ring->next];
    if (oldest && now - oldest < period)
        return false;
    ring->times [ring->next] = now;
    ring->next = (ring->next + 1) % (size_t) max;
    return true;
}

//  When to restart a child that exited now: after its backoff, which
//  doubles each time up to the maximum; a worker that ran for a whole
//  period starts its backoff afresh
static int64_t
s_restart_time (child_t *child, int64_t now)
{
    if (now - child->started >= child->supervision.period)
        child->backoff = child->supervision.backoff_initial;
    int64_t at = now + child->backoff;
    child->backoff = child->backoff * 2 < child->supervision.backoff_max
                   ? child->backoff * 2: child->supervision.backoff_max;
    return at;
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
    //  Senders must see that a dead worker is gone
    zp__mailbox_remove (self->dir, child->name);
    child->code = code;
    if (child->regroup) {
        //  We stopped it for a group restart: it waits for the group,
        //  unless it is temporary (as in OTP: stopped, it stays stopped)
        if (child->supervision.policy == ZP_RESTART_TEMPORARY) {
            s_child_gone (self, child, pid, code, false);
            return;
        }
        s_publish_int (self, child, "code", code);
        s_publish (self, child->name, "status", "restarting");
        child->pid = -pid;
        child->restart_at = NOT_YET;
        return;
    }
    if (!s_wants_restart (self, child, code)) {
        s_child_gone (self, child, pid, code, false);
        return;
    }
    if (self->strategy != ZP_STRATEGY_ONE_FOR_ONE) {
        //  The group restart is decided outside any walk of the children
        s_publish_int (self, child, "code", code);
        s_publish (self, child->name, "status", "restarting");
        child->pid = -pid;
        child->restart_at = NOT_YET;
        child->trigger = true;
        return;
    }
    int64_t now = zclock_mono ();
    if (!s_within_intensity (&child->restarts, child->supervision.max_restarts,
                             child->supervision.period, now)) {
        zsys_warning ("zproc: worker %s restarted too often, giving up", child->name);
        s_child_gone (self, child, pid, code, true);
        return;
    }
    child->restart_at = s_restart_time (child, now);
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
    int control_fd;
    pid_t pid = zp__ctx_fork (self->ctx, child->name, child->supervision.fn,
                              child->supervision.props, &control_fd);
    if (pid < 0) {
        //  Could not fork: count it as one more failed start
        child->started = zclock_mono ();
        s_child_exited (self, child, old_pid, 255);
        return;
    }
    s_watch (self, child, pid);
    child->stopped = false;
    child->regroup = false;
    s_publish_int (self, child, "pid", pid);
    s_publish_int (self, child, "restarts", ++child->restarted);
    s_publish (self, child->name, "status", "starting");
    zsock_send (self->events, "iiii", (int) old_pid, 0, (int) pid, 0);
    if (zp__ctx_await_ready (control_fd) == 0) {
        child->control_fd = control_fd;
        s_publish (self, child->name, "status", "running");
    }
    else                        //  It is dying: its exit is reaped as usual
        zp__lane_fd_close (control_fd);
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

//  How long s_wait may sleep: until the next restart, or the next poll
//  of children without a pidfd
static int
s_timeout (self_t *self, int64_t deadline)
{
    int timeout = zp__remaining (deadline);
    if (self->unwatched && (timeout < 0 || timeout > POLL_INTERVAL))
        timeout = POLL_INTERVAL;
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->pid < 0 && child->restart_at != NOT_YET) {
            int64_t wait = child->restart_at - zclock_mono ();
            wait = wait > 0? wait: 0;
            if (timeout < 0 || wait < timeout)
                timeout = (int) wait;
        }
    return timeout;
}


//  Wait up to timeout msecs (-1: for ever) for a child to exit, or for a
//  command on the pipe when with_pipe; true when a command is waiting. The
//  pidfds go to zmq_poll as plain descriptors, never through zpoller: it
//  takes any pointer that is not a zsock for a libzmq socket and probes it,
//  reading 1.5 KB past the descriptor, which faults when a child's record
//  lies at the end of the heap (a nested supervisor died of SIGSEGV so)
static bool
s_wait (self_t *self, bool with_pipe, int timeout)
{
    size_t needed = zlistx_size (self->children) + 1;
    if (needed > self->items_max) {
        zmq_pollitem_t *items = (zmq_pollitem_t *) realloc (self->items,
                                                            needed * sizeof (zmq_pollitem_t));
        if (!items) {
            //  Out of memory: poll the exits instead of watching them
            zclock_sleep (POLL_INTERVAL);
            return false;
        }
        self->items = items;
        self->items_max = needed;
    }
    int count = 0;
    if (with_pipe)
        self->items [count++] = (zmq_pollitem_t) { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 };
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->pid > 0 && child->pidfd >= 0)
            self->items [count++] = (zmq_pollitem_t) { NULL, child->pidfd, ZMQ_POLLIN, 0 };
    //  EINTR (a signal) is a wake-up like any other
    return zmq_poll (self->items, count, timeout) > 0
        && with_pipe && (self->items [0].revents & ZMQ_POLLIN);
}


//  --------------------------------------------------------------------------
//  Stop children: $TERM, SIGTERM, SIGKILL, a grace period between each. The
//  children to stop are those marked stopped: every one at shutdown, those
//  a group restart takes along otherwise.

//  True while a child marked stopped still runs
static bool
s_stopped_running (self_t *self)
{
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->stopped && child->pid > 0)
            return true;
    return false;
}

//  Wait until every child marked stopped has exited, or deadline, reaping
//  as they go
static void
s_wait_stopped (self_t *self, int64_t deadline)
{
    while (s_stopped_running (self) && zclock_mono () < deadline) {
        s_wait (self, false, s_timeout (self, deadline));
        s_reap (self);
    }
}

static void
s_signal_stopped (self_t *self, int signum)
{
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->stopped && child->pid > 0)
            kill (child->pid, signum);
}

static void
s_terminate (self_t *self, int grace)
{
    //  The $TERM sockets live until every child is gone, then whatever
    //  they still hold (for children that left first) is discarded
    zlistx_t *terms = zlistx_new ();
    if (terms)
        zlistx_set_destructor (terms, (czmq_destructor *) zsock_destroy);
    for (child_t *child = (child_t *) zlistx_first (self->children); child && terms;
         child = (child_t *) zlistx_next (self->children)) {
        if (!child->stopped || child->pid <= 0)
            continue;
        s_publish (self, child->name, "status", "stopping");
        zsock_t *term = NULL;
        if (zp__worker_stop (child->control_fd, self->dir, child->name, self->keys,
                             &term) < 0)
            zsys_warning ("zproc: cannot send $TERM to worker %s (%s): it will get SIGTERM",
                          child->name, zp_strerror (errno));
        if (term)
            zlistx_add_end (terms, term);
    }
    s_reap (self);              //  At shutdown, those waiting for a restart go now
    s_wait_stopped (self, zclock_mono () + grace);
    if (s_stopped_running (self)) {
        s_signal_stopped (self, SIGTERM);
        s_wait_stopped (self, zclock_mono () + grace);
    }
    if (s_stopped_running (self)) {
        s_signal_stopped (self, SIGKILL);
        //  SIGKILL cannot be ignored: wait as long as it takes
        s_wait_stopped (self, INT64_MAX);
    }
    zlistx_destroy (&terms);
}

//  Shutdown: stop every child, restart none
static void
s_stop (self_t *self, int grace)
{
    self->stopping = true;
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        child->stopped = true;
    s_terminate (self, grace);
    s_reap (self);
}


//  --------------------------------------------------------------------------
//  Group restarts (one_for_all, rest_for_one): a child that died asked for
//  one (trigger); the others the strategy takes along are stopped, then all
//  restart together in spawn order, or, when the group's intensity is spent,
//  every one is given up

//  One group restart, for the first child (in spawn order) that asked for
//  one; false when none did
static bool
s_regroup_once (self_t *self)
{
    child_t *trigger = NULL;
    for (child_t *child = (child_t *) zlistx_first (self->children); child && !trigger;
         child = (child_t *) zlistx_next (self->children))
        if (child->trigger)
            trigger = child;
    if (!trigger || self->stopping)
        return false;
    int64_t now = zclock_mono ();
    bool within = s_within_intensity (&self->group_restarts, self->max_restarts,
                                      self->period, now);
    if (!within)
        zsys_warning ("zproc: worker %s: group restarted too often, giving up", trigger->name);
    bool after = false;
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children)) {
        after |= child == trigger;
        if (child->trigger)
            child->trigger = false;     //  Dead already, waiting for the group
        else
        if (!within || self->strategy == ZP_STRATEGY_ONE_FOR_ALL || after) {
            child->stopped = true;
            child->regroup = true;
            if (child->pid < 0)
                child->restart_at = NOT_YET;    //  Its own restart joins the group's
        }
    }
    s_terminate (self, self->grace);
    //  Every child waiting for the group: restarted at once, or given up
    int64_t restart_at = within? s_restart_time (trigger, zclock_mono ()): 0;
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->pid < 0 && child->restart_at == NOT_YET) {
            if (within)
                child->restart_at = restart_at;
            else
                s_child_gone (self, child, -child->pid, child->code, true);
        }
    return true;
}

//  Every group restart asked for, including those asked for while one was
//  under way
static void
s_regroup (self_t *self)
{
    while (s_regroup_once (self))
        ;
}


//  --------------------------------------------------------------------------
//  Commands from the owner

//  Track a child (takes name); the child, or NULL when out of memory
static child_t *
s_track (self_t *self, int pid, char *name, zp_supervision_t *supervision)
{
    child_t *child = (child_t *) zmalloc (sizeof (child_t));
    if (!child) {
        zsys_error ("zproc reaper: out of memory, pid %d is not tracked", pid);
        free (name);
        return NULL;
    }
    child->name = name;
    child->control_fd = -1;
    child->supervision = *supervision;
    //  The group's settings are those of its first worker (the context
    //  refuses a new strategy once it has one); the grace period the latest
    if (!self->grouped) {
        self->grouped = true;
        self->strategy = supervision->strategy;
        self->max_restarts = supervision->max_restarts;
        self->period = supervision->period;
    }
    self->grace = supervision->grace;
    child->backoff = supervision->backoff_initial;
    child->handle = zlistx_add_end (self->children, child);
    s_watch (self, child, pid);
    s_publish_int (self, child, "pid", pid);
    s_publish (self, child->name, "status", "starting");
    return child;
}

static child_t *
s_lookup (self_t *self, pid_t pid)
{
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        if (child->pid == pid)
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
        zp_supervision_t supervision;
        if (pid && name && frame && zframe_size (frame) == sizeof (supervision)) {
            memcpy (&supervision, zframe_data (frame), sizeof (supervision));
            s_track (self, atoi (pid), name, &supervision);
            name = NULL;
        }
        zframe_destroy (&frame);
        zstr_free (&pid);
        zstr_free (&name);
    }
    else
    if (streq (command, "READY")) {
        char *pid = zmsg_popstr (request);
        char *ready = zmsg_popstr (request);
        char *control = zmsg_popstr (request);
        child_t *child = pid? s_lookup (self, atoi (pid)): NULL;
        int control_fd = control? atoi (control): -1;
        if (child && ready && streq (ready, "1")) {
            child->control_fd = control_fd;
            s_publish (self, child->name, "status", "running");
        }
        else
            zp__lane_fd_close (control_fd);
        zstr_free (&control);
        zstr_free (&ready);
        zstr_free (&pid);
        //  The notice is on its way to the store
        zsock_signal (self->pipe, 0);
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
        if (s_wait (self, true, s_timeout (self, -1)))
            s_handle_pipe (self);
        else
            s_reap (self);
        s_regroup (self);
    }
    s_self_destroy (&self);
}
