/*  =========================================================================
    zp_reaper - the reaper actor
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/syscall.h>

//  How often children without a pidfd are polled, msecs
#define POLL_INTERVAL   50

typedef struct {
    pid_t pid;                  //  The child
    int pidfd;                  //  Readable when it exits; -1 when unsupported
    char *name;                 //  Its worker name, for its mailbox
} child_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *events;            //  Exit events to the context
    zpoller_t *poller;          //  Polls pipe and pidfds
    bool terminated;            //  Did our owner ask us to quit?
    char *dir;                  //  Socket directory
    zp_keys_t *keys;            //  CURVE keys for the mailboxes, or NULL
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


//  --------------------------------------------------------------------------
//  Constructor and destructor

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    zpoller_destroy (&self->poller);
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
    self->children = zlistx_new ();
    self->events = zsock_new (ZMQ_PAIR);
    if (!self->dir || !self->children || !self->events)
        goto failed;
    zlistx_set_destructor (self->children, (czmq_destructor *) s_child_destroy);
    zsock_set_sndhwm (self->events, 0);
    if (zsock_bind (self->events, "%s", args->events) < 0)
        goto failed;
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
//  Reap the children that have exited; report each one

static void
s_reap (self_t *self)
{
    child_t *child = (child_t *) zlistx_first (self->children);
    while (child) {
        child_t *next = (child_t *) zlistx_next (self->children);
        int status;
        pid_t pid;
        do
            pid = waitpid (child->pid, &status, WNOHANG);
        while (pid < 0 && errno == EINTR);
        //  ECHILD: someone else reaped it (SIGCHLD ignored); we cannot know
        //  how it ended
        if (pid == child->pid || (pid < 0 && errno == ECHILD)) {
            int code = pid < 0? 255
                     : WIFEXITED (status)? WEXITSTATUS (status)
                     : WIFSIGNALED (status)? 128 + WTERMSIG (status): 255;
            zsock_send (self->events, "ii", (int) child->pid, code);
            if (child->pidfd >= 0)
                zpoller_remove (self->poller, &child->pidfd);
            else
                self->unwatched--;
            zlistx_delete (self->children, zlistx_find (self->children, child));
        }
        child = next;
    }
}


//  --------------------------------------------------------------------------
//  Poll once: commands are not read here, only exits

static void
s_wait (self_t *self, int64_t deadline)
{
    int timeout = zp__remaining (deadline);
    if (self->unwatched && (timeout < 0 || timeout > POLL_INTERVAL))
        timeout = POLL_INTERVAL;
    zpoller_wait (self->poller, timeout);
    s_reap (self);
}

//  Wait until every child has exited or deadline, reaping as they go
static void
s_wait_all (self_t *self, int64_t deadline)
{
    zpoller_remove (self->poller, self->pipe);
    while (zlistx_size (self->children) && zclock_mono () < deadline)
        s_wait (self, deadline);
    zpoller_add (self->poller, self->pipe);
}

static void
s_signal_all (self_t *self, int signum)
{
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children))
        kill (child->pid, signum);
}


//  --------------------------------------------------------------------------
//  Stop every child: $TERM, SIGTERM, SIGKILL, a grace period between each

static void
s_stop (self_t *self, int grace)
{
    for (child_t *child = (child_t *) zlistx_first (self->children); child;
         child = (child_t *) zlistx_next (self->children)) {
        zsock_t *mailbox = zp__mailbox_connect (self->dir, child->name, self->keys);
        zmsg_t *term = zmsg_new ();
        if (mailbox && term && zmsg_addstr (term, "$TERM") == 0)
            zp__mailbox_send (mailbox, "main", &term, 0);
        zmsg_destroy (&term);
        zsock_destroy (&mailbox);
    }
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
}


//  --------------------------------------------------------------------------
//  Commands from the owner

static void
s_track (self_t *self, int pid, char *name)
{
    child_t *child = (child_t *) zmalloc (sizeof (child_t));
    if (!child) {
        zsys_error ("zproc reaper: out of memory, pid %d is not tracked", pid);
        free (name);
        return;
    }
    child->pid = pid;
    child->name = name;
    child->pidfd = s_pidfd_open (pid);
    zlistx_add_end (self->children, child);
    if (child->pidfd >= 0)
        zpoller_add (self->poller, &child->pidfd);
    else
        self->unwatched++;
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
        if (pid && name) {
            s_track (self, atoi (pid), name);
            name = NULL;
        }
        zstr_free (&pid);
        zstr_free (&name);
        zsock_signal (self->pipe, 0);
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
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", self? 0: errno);
    if (!self)
        return;
    while (!self->terminated) {
        int timeout = self->unwatched? POLL_INTERVAL: -1;
        void *which = zpoller_wait (self->poller, timeout);
        if (which == self->pipe)
            s_handle_pipe (self);
        else
            s_reap (self);
    }
    s_self_destroy (&self);
}
