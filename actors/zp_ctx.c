/*  =========================================================================
    zp_ctx - the context: store, watcher registry and reaper (parent side)

    The context makes a private directory for its ipc endpoints, starts the
    three actors, and forks workers in the caller's thread: forking from an
    actor's thread would tie every worker's parent-death signal to that
    thread. A child keeps nothing of the parent's ZeroMQ state: CZMQ's
    at-fork handler drops the inherited context, the child makes its own
    sockets, and it leaves with _exit so that the parent's atexit clean-up
    never runs in it.
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <poll.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#if defined (HAVE_SYS_PRCTL_H)
#   include <sys/prctl.h>
#endif

//  How long zp_ctx_spawn waits for a new worker to report, msecs
#define SPAWN_TIMEOUT       10000
//  Default grace period between $TERM, SIGTERM and SIGKILL, msecs
#define DEFAULT_GRACE       1000
//  Workers forked back to back at most (zp__ctx_fork_all): the parent's
//  bookkeeping between two batches is paid once for all of a batch
#define FORK_BATCH          32

//  In a worker: the grace period of the context that forked it, as it was at
//  the fork; 0 in a process that no context forked. A context made in a
//  worker defaults to half of it, so that its shutdown ($TERM, SIGTERM,
//  SIGKILL) is over before its parent's escalates to the worker itself
static int s_parent_grace = 0;

//  A worker registered by zp_ctx_process_factory, not started yet
typedef struct {
    char *name;                 //  Its name, given at registration
    zp_worker_fn *fn;           //  Its body
    void *props;                //  Its argument
} factory_t;

static void
s_factory_destroy (factory_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->name);
        free (*self_p);
        *self_p = NULL;
    }
}

//  An object that lives on the context (a pool), destroyed with it
typedef struct {
    void *item;                 //  The object
    czmq_destructor *destructor;    //  Destroys it: destructor (&item)
} attached_t;

//  Forget an attachment (the object itself is not destroyed)
static void
s_attached_destroy (attached_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

struct _zp_ctx_t {
    pid_t owner;                //  The process that made the context
    char *dir;                  //  Private socket directory
    char *endpoint;             //  The store's ipc endpoint
    zp_feed_t *feed;            //  From the store to the registry
    zp_feed_t *answers;         //  From the registry to the store
    char *events_endpoint;      //  inproc endpoint of the reaper's events
    char *sys;                  //  inproc endpoint of the store's own writes
    uint64_t sys_sent;          //  How many we and the reaper sent there
    zactor_t *store;            //  The store actor
    zp_watchers_t *registry;    //  Parked watcher requests
    zactor_t *watchers;         //  The watcher registry's actor
    zactor_t *reaper;           //  The reaper actor
    zsock_t *events;            //  Worker exits, from the reaper
    zp_state_t *state;          //  The parent's own state handle
    zp_worker_t *main;          //  The parent's mailbox ("main"), or the owner's
    zlistx_t *procs;            //  zp_proc_t, owned
    zlistx_t *factory;          //  factory_t waiting for zp_ctx_start_all
    zlistx_t *bound;            //  Endpoints added by zp_ctx_bind (strings)
    zp_keys_t *keys;            //  CURVE keys, NULL when CURVE is off
    zp_shared_t *shared;        //  Memory shared with every worker (the store's seq)
    bool nested;                //  A worker's own: store, directory and keys borrowed
    char *name_prefix;          //  Names unnamed workers: prefix + number
    zlistx_t *admitted;         //  Files of the certificates we admitted (strings)
    size_t worker_nbr;          //  Numbers unnamed workers
    int grace;                  //  Msecs between $TERM, SIGTERM and SIGKILL
    int failure;                //  Status of the first worker that failed, or 0
    zsock_t *notices;           //  Our own writes of reserved keys, made on first use
    zlistx_t *attached;         //  attached_t: objects destroyed before the workers
    zp_supervision_t supervision;   //  Restart settings for the next spawns
    int adopt;                  //  Hands lane ends to the store; -1 when nested
    zp_state_t *lender;         //  Nested: asks the store for its workers' lanes
    pthread_mutex_t lender_lock;    //  Spawns (our thread) and restarts (the reaper's)
};


//  --------------------------------------------------------------------------
//  Start an actor and collect its real start-up status; NULL with errno

static zactor_t *
s_actor_start (zactor_fn *fn, void *args)
{
    //  The actor's thread inherits a mask without SIGINT and SIGTERM, so
    //  that they interrupt the caller's thread, where someone waits for them
    sigset_t blocked, saved;
    sigemptyset (&blocked);
    sigaddset (&blocked, SIGINT);
    sigaddset (&blocked, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &blocked, &saved);
    zactor_t *actor = zp__actor_new (fn, args);
    int failed = errno;
    pthread_sigmask (SIG_SETMASK, &saved, NULL);
    if (!actor)
        return zp__fail (failed, NULL);         //  No descriptor left
    int rc = ENOMEM;
    if (zsock_recv (actor, "i", &rc) < 0 || rc != 0) {
        zactor_destroy (&actor);
        return zp__fail (rc? rc: ENOMEM, NULL);
    }
    return actor;
}

//  Wait for an actor's signal; a signal arriving meanwhile does not cut
//  the wait short
static void
s_actor_wait (zactor_t *actor)
{
    while (zsock_wait (actor) < 0 && errno == EINTR)
        ;
}


//  --------------------------------------------------------------------------
//  Remove the socket directory and what the workers left in it

static void
s_remove_dir (const char *dir)
{
    DIR *handle = opendir (dir);
    if (handle) {
        struct dirent *entry;
        while ((entry = readdir (handle)))
            if (strneq (entry->d_name, ".") && strneq (entry->d_name, "..")) {
                char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
                if (path)
                    unlink (path);
                zstr_free (&path);
            }
        closedir (handle);
    }
    rmdir (dir);
}


//  --------------------------------------------------------------------------
//  Directories left behind by contexts whose process died (SIGKILL leaves
//  no chance to clean up) are removed by the next context of the same
//  user. A directory names its owner in its "owner" file.

static const char *
s_tmpdir (void)
{
    const char *tmpdir = getenv ("TMPDIR");
    return tmpdir && *tmpdir? tmpdir: "/tmp";
}

static int
s_write_owner (const char *dir)
{
    char *path = zsys_sprintf ("%s/owner", dir);
    FILE *file = path? fopen (path, "w"): NULL;
    int rc = file && fprintf (file, "%d\n", (int) getpid ()) > 0? 0: -1;
    if (file && fclose (file) != 0)
        rc = -1;
    zstr_free (&path);
    return rc;
}

static void
s_remove_stale_dirs (void)
{
    DIR *handle = opendir (s_tmpdir ());
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (strncmp (entry->d_name, "zproc-", 6) != 0)
            continue;
        char *dir = zsys_sprintf ("%s/%s", s_tmpdir (), entry->d_name);
        char *path = dir? zsys_sprintf ("%s/owner", dir): NULL;
        struct stat info;
        FILE *file = NULL;
        //  Only our own directories, and only when the owner is gone
        if (path && stat (dir, &info) == 0 && info.st_uid == getuid ()
        &&  (file = fopen (path, "r"))) {
            int owner = 0;
            if (fscanf (file, "%d", &owner) == 1 && owner > 0
            &&  kill (owner, 0) < 0 && errno == ESRCH)
                s_remove_dir (dir);
            fclose (file);
        }
        zstr_free (&path);
        zstr_free (&dir);
    }
    closedir (handle);
}


//  --------------------------------------------------------------------------
//  CURVE authentication. libzmq allows one ZAP handler per ZeroMQ context,
//  and CZMQ has one context per process, so every CURVE context of a
//  process shares one zauth actor. It admits the client certificates
//  listed in a private directory, one public certificate per context.

static pthread_mutex_t s_auth_mutex = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *s_auth = NULL;         //  The process's zauth actor
static char *s_auth_dir = NULL;         //  The certificates it admits
static zhashx_t *s_auth_files = NULL;   //  File -> how many admissions use it
static pid_t s_auth_pid = 0;            //  The process they belong to

//  zauth reloads the directory on each CURVE command; without
//  certificates it stops
static void
s_auth_reload (void)
{
    if (zhashx_size (s_auth_files)) {
        zstr_sendx (s_auth, "CURVE", s_auth_dir, NULL);
        zsock_wait (s_auth);
    }
    else {
        zactor_destroy (&s_auth);
        zhashx_destroy (&s_auth_files);
        s_remove_dir (s_auth_dir);
        zstr_free (&s_auth_dir);
    }
}

//  Admit a certificate; returns the file that admits it (the caller
//  frees the string), or NULL with errno. A key admitted twice shares one
//  file: zauth's certificate store refuses (asserts on) duplicates.
static char *
s_auth_admit (zcert_t *cert)
{
    pthread_mutex_lock (&s_auth_mutex);
    if (s_auth_pid != getpid ()) {
        //  What a forked child inherited belongs to its parent
        s_auth = NULL;
        s_auth_dir = NULL;
        s_auth_files = NULL;
        s_auth_pid = getpid ();
    }
    char *path = NULL;
    if (!s_auth) {
        s_auth_dir = zsys_sprintf ("%s/zproc-auth-XXXXXX", s_tmpdir ());
        s_auth_files = zhashx_new ();
        //  An owner file, so that a SIGKILL leaves nothing for good (zauth
        //  skips what is not a certificate)
        if (s_auth_dir && s_auth_files && mkdtemp (s_auth_dir)
        &&  s_write_owner (s_auth_dir) == 0)
            s_auth = zp__actor_new (zauth, NULL);
        if (!s_auth) {
            if (s_auth_dir)
                s_remove_dir (s_auth_dir);
            zstr_free (&s_auth_dir);
            zhashx_destroy (&s_auth_files);
            goto done;
        }
    }
    //  Named after the key in hex (Z85 may hold '/')
    char hex [65];
    const byte *key = zcert_public_key (cert);
    for (int index = 0; index < 32; index++)
        snprintf (hex + index * 2, 3, "%02x", key [index]);
    path = zsys_sprintf ("%s/%s.pub", s_auth_dir, hex);
    uintptr_t users = path? (uintptr_t) zhashx_lookup (s_auth_files, path): 0;
    if (users)
        zhashx_update (s_auth_files, path, (void *) (users + 1));
    else
    if (path && zcert_save_public (cert, path) == 0) {
        zhashx_insert (s_auth_files, path, (void *) 1);
        s_auth_reload ();
    }
    else {
        zstr_free (&path);
        if (zhashx_size (s_auth_files) == 0)
            s_auth_reload ();
    }
done:
    pthread_mutex_unlock (&s_auth_mutex);
    return path? path: zp__fail (EACCES, NULL);
}

//  Withdraw an admission; the last one of a key removes its file, the
//  last one of all stops zauth
static void
s_auth_withdraw (char **path_p)
{
    if (!*path_p)
        return;
    pthread_mutex_lock (&s_auth_mutex);
    if (s_auth_pid == getpid () && s_auth) {
        uintptr_t users = (uintptr_t) zhashx_lookup (s_auth_files, *path_p);
        if (users > 1)
            zhashx_update (s_auth_files, *path_p, (void *) (users - 1));
        else {
            unlink (*path_p);
            zhashx_delete (s_auth_files, *path_p);
            s_auth_reload ();
        }
    }
    zstr_free (path_p);
    pthread_mutex_unlock (&s_auth_mutex);
}

//  Admit a client certificate to this context's store; -1 with errno
static int
s_admit (zp_ctx_t *self, zcert_t *cert)
{
    char *path = s_auth_admit (cert);
    if (!path)
        return -1;
    zlistx_add_end (self->admitted, path);
    return 0;
}

//  Admit every certificate in a directory (zcert files); none when NULL
static int
s_admit_directory (zp_ctx_t *self, const char *dir)
{
    DIR *handle = dir? opendir (dir): NULL;
    if (dir && !handle)
        return -1;
    struct dirent *entry;
    int rc = 0;
    while (handle && rc == 0 && (entry = readdir (handle))) {
        char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
        //  zcert_save writes NAME and NAME_secret: the key once is enough
        size_t length = strlen (entry->d_name);
        bool secret = length > 7 && streq (entry->d_name + length - 7, "_secret");
        zcert_t *cert = path && entry->d_name [0] != '.' && !secret? zcert_load (path): NULL;
        if (cert)
            rc = s_admit (self, cert);
        zcert_destroy (&cert);
        zstr_free (&path);
    }
    if (handle)
        closedir (handle);
    return rc;
}

static void
s_keys_destroy (zp_keys_t **self_p)
{
    zp_keys_t *self = *self_p;
    if (self) {
        zcert_destroy (&self->store);
        zcert_destroy (&self->client);
        zcert_destroy (&self->mailbox);
        free (self);
        *self_p = NULL;
    }
}

static zp_keys_t *
s_keys_new (void)
{
    zp_keys_t *self = (zp_keys_t *) zmalloc (sizeof (zp_keys_t));
    if (self) {
        self->store = zcert_new ();
        self->client = zcert_new ();
        self->mailbox = zcert_new ();
        if (!self->store || !self->client || !self->mailbox)
            s_keys_destroy (&self);
    }
    return self? self: zp__fail (ENOMEM, NULL);
}


//  --------------------------------------------------------------------------
//  Constructor

//  What every context has: settings, lists, and a reaper with its events
static zp_ctx_t *
s_ctx_alloc (const char *name_prefix)
{
    zp_ctx_t *self = (zp_ctx_t *) zmalloc (sizeof (zp_ctx_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->owner = getpid ();
    self->adopt = -1;
    pthread_mutex_init (&self->lender_lock, NULL);
    self->grace = s_parent_grace > 0? s_parent_grace / 2: DEFAULT_GRACE;
    self->supervision.policy = ZP_RESTART_TEMPORARY;
    self->supervision.max_restarts = 5;
    self->supervision.period = 10000;
    self->supervision.backoff_initial = 50;
    self->supervision.backoff_max = 5000;
    self->name_prefix = strdup (name_prefix);
    self->procs = zlistx_new ();
    self->factory = zlistx_new ();
    self->bound = zlistx_new ();
    self->admitted = zlistx_new ();
    self->attached = zlistx_new ();
    self->events_endpoint = zp__inproc_endpoint ("events");
    if (!self->name_prefix || !self->procs || !self->factory || !self->bound
    ||  !self->admitted || !self->attached || !self->events_endpoint) {
        zp_ctx_destroy (&self);
        return zp__fail (ENOMEM, NULL);
    }
    zlistx_set_destructor (self->procs, (czmq_destructor *) zp__proc_destroy);
    zlistx_set_destructor (self->factory, (czmq_destructor *) s_factory_destroy);
    zlistx_set_destructor (self->bound, (czmq_destructor *) zstr_free);
    zlistx_set_destructor (self->attached, (czmq_destructor *) s_attached_destroy);
    return self;
}

//  Start the reaper and connect to the store: the context's handle and the
//  reaper's on lanes when state_lane and reaper_lane are not -1 (both are
//  taken), else at the endpoint; -1 with errno
static int
s_ctx_start (zp_ctx_t *self, int state_lane, int reaper_lane)
{
    zp_reaper_args_t reaper_args = {
        self->events_endpoint, self->sys, self->sys? &self->sys_sent: NULL, self->endpoint,
        self->dir, self->keys, self, reaper_lane
    };
    self->reaper = s_actor_start (zp_reaper_actor, &reaper_args);
    self->events = self->reaper? zp__sock_new (ZMQ_PAIR): NULL;
    if (!self->events || zsock_connect (self->events, "%s", self->events_endpoint) < 0) {
        zp__lane_fd_close (state_lane);
        return -1;
    }
    zsock_set_rcvhwm (self->events, 0);
    self->state = zp__state_new (self->endpoint, zp_ctx_public_key (self),
                                 self->keys? self->keys->client: NULL, zp__default_timeout (),
                                 state_lane);
    zp__state_share (self->state, self->shared);
    return self->state? 0: -1;
}

//  Every connection to the store costs a descriptor, and libzmq 4.3.4's
//  ipc listener asserts when accept fails with EMFILE: the soft limit goes
//  up to the hard one, as Redis does at start-up (doc/RATIONALE.md)
static void
s_raise_fd_limit (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit) < 0)
            zsys_warning ("zproc: cannot raise the descriptor limit to %llu: %s",
                          (unsigned long long) limit.rlim_max, strerror (errno));
    }
}

zp_ctx_t *
zp_ctx_new (void)
{
    s_raise_fd_limit ();
    zp_ctx_t *self = s_ctx_alloc ("worker-");
    if (!self)
        return NULL;
    s_remove_stale_dirs ();
    //  mkdtemp makes the directory with mode 0700: ours alone
    self->dir = zsys_sprintf ("%s/zproc-XXXXXX", s_tmpdir ());
    if (!self->dir)
        goto failed;
    if (!mkdtemp (self->dir)) {
        zstr_free (&self->dir);
        goto failed;
    }
    if (s_write_owner (self->dir) < 0)
        goto failed;
    self->endpoint = zsys_sprintf ("ipc://%s/store", self->dir);
    self->feed = zp__feed_new ();
    self->answers = zp__feed_new ();
    self->sys = zp__inproc_endpoint ("sys");
    self->registry = self->feed && self->answers?
        zp__watchers_new (self->feed, self->answers): NULL;
    if (!self->endpoint || !self->registry || !self->sys)
        goto failed;
    const char *curve = getenv ("ZPROC_CURVE");
    if (curve && streq (curve, "1")) {
        self->keys = s_keys_new ();
        if (!self->keys || s_admit (self, self->keys->client) < 0
        ||  s_admit_directory (self, getenv ("ZPROC_CURVE_ALLOW")) < 0)
            goto failed;
    }
    //  Made before any fork, so that every worker shares it
    self->shared = (zp_shared_t *) mmap (NULL, sizeof (zp_shared_t), PROT_READ | PROT_WRITE,
                                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (self->shared == MAP_FAILED) {
        self->shared = NULL;
        goto failed;
    }
    //  The store adopts the lanes of the workers we fork through this: a
    //  datagram is a descriptor number, valid in the store's thread
    int adopt [2];
    if (socketpair (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, adopt) < 0)
        goto failed;
    self->adopt = adopt [1];
    zp__lane_fd_mark (adopt [0], true);
    zp__lane_fd_mark (adopt [1], true);
    zp_store_args_t store_args = {
        self->endpoint, self->feed, self->answers, self->registry, self->sys, &self->sys_sent,
        self->keys? self->keys->store: NULL, self->shared, adopt [0]
    };
    self->store = s_actor_start (zp_store_actor, &store_args);
    if (!self->store)
        goto failed;
    self->watchers = s_actor_start (zp_watchers_actor, self->registry);
    if (!self->watchers || s_ctx_start (self, -1, -1) < 0)
        goto failed;
    self->main = zp__worker_new ("main", self->dir, self->endpoint, self->keys, -1,
                                 self->shared, NULL, -1, -1);
    if (!self->main || zp__worker_start (self->main) < 0)
        goto failed;
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    zp_ctx_destroy (&self);
    return zp__fail (saved, NULL);
}

zp_ctx_t *
zp__ctx_new_nested (zp_worker_t *owner)
{
    char *prefix = zsys_sprintf ("%s.", zp_worker_name (owner));
    zp_ctx_t *self = prefix? s_ctx_alloc (prefix): NULL;
    zstr_free (&prefix);
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->nested = true;
    self->main = owner;
    self->keys = zp__worker_keys (owner);
    self->shared = zp__state_shared (zp_worker_state (owner));
    self->dir = strdup (zp__worker_dir (owner));
    self->endpoint = strdup (zp__worker_endpoint (owner));
    //  On the owner's lane, the store hands out lanes of their own to this
    //  context's handle, to its reaper's and to the lender, which asks for
    //  one per worker forked (without a lane: the endpoint, as a client)
    zp_state_t *owner_state = zp_worker_state (owner);
    int state_lane = self->dir && self->endpoint? zp__state_lane (owner_state): -1;
    int reaper_lane = state_lane >= 0? zp__state_lane (owner_state): -1;
    int lender_lane = reaper_lane >= 0? zp__state_lane (owner_state): -1;
    if (lender_lane >= 0)
        self->lender = zp__state_new (self->endpoint, zp_ctx_public_key (self),
                                      self->keys? self->keys->client: NULL,
                                      zp__default_timeout (), lender_lane);
    //  s_ctx_start takes both lanes, also when it fails
    if (!self->dir || !self->endpoint || s_ctx_start (self, state_lane, reaper_lane) < 0) {
        int saved = errno? errno: ENOMEM;
        zp_ctx_destroy (&self);
        return zp__fail (saved, NULL);
    }
    return self;
}


//  --------------------------------------------------------------------------
//  Destructor: workers first (they may still use the store), then the
//  registry's parked requests, then the actors, then the directory

void
zp_ctx_destroy (zp_ctx_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zp_ctx_t *self = *self_p;
    *self_p = NULL;
    //  A forked child holds a copy of its parent's context: never stop the
    //  parent's workers or remove its directory from there
    if (self->owner != getpid ())
        return;
    //  Pools first: their workers are ours but not the reaper's
    attached_t *attached;
    while (self->attached && (attached = (attached_t *) zlistx_detach (self->attached, NULL))) {
        attached->destructor (&attached->item);
        free (attached);
    }
    zlistx_destroy (&self->attached);
    if (self->watchers) {
        //  Parked watchers get EINTR, so blocked workers can leave
        zstr_send (self->watchers, "SHUTDOWN");
        s_actor_wait (self->watchers);
    }
    if (self->reaper) {
        zsock_send (self->reaper, "si", "STOP", self->grace);
        //  A worker leaves only once its mail is delivered: take what it
        //  sends us meanwhile, which nobody will read any more
        zpoller_t *poller = zpoller_new (self->reaper, NULL);
        if (poller && self->main && !self->nested)
            zpoller_add (poller, zp_worker_mailbox (self->main));
        if (poller)
            zpoller_set_nonstop (poller, true);     //  A Ctrl-C must not cut this short
        void *which = NULL;
        while (poller && which != self->reaper) {
            which = zpoller_wait (poller, -1);
            if (which && which != self->reaper)
                zp__worker_discard (self->main);
        }
        zpoller_destroy (&poller);
        s_actor_wait (self->reaper);
    }
    if (!self->nested)
        zp__worker_destroy (&self->main);
    zp_state_destroy (&self->state);
    zsock_destroy (&self->notices);
    zsock_destroy (&self->events);
    zactor_destroy (&self->watchers);
    zactor_destroy (&self->store);
    //  After both: what one sent and the other did not take goes with them
    zp__watchers_destroy (&self->registry);
    zp__feed_destroy (&self->feed);
    zp__feed_destroy (&self->answers);
    zp__lane_fd_close (self->adopt);
    zactor_destroy (&self->reaper);
    zp_state_destroy (&self->lender);
    pthread_mutex_destroy (&self->lender_lock);
    zlistx_destroy (&self->procs);
    zlistx_destroy (&self->factory);
    zlistx_destroy (&self->bound);
    if (self->dir && !self->nested) {
        s_remove_dir (self->dir);
        //  And what contexts of processes that died left (a worker's own,
        //  killed before it could clean up)
        s_remove_stale_dirs ();
    }
    char *admitted;
    while (self->admitted && (admitted = (char *) zlistx_detach (self->admitted, NULL)))
        s_auth_withdraw (&admitted);
    zlistx_destroy (&self->admitted);
    if (!self->nested) {
        s_keys_destroy (&self->keys);
        if (self->shared)
            munmap (self->shared, sizeof (zp_shared_t));
    }
    free (self->name_prefix);
    free (self->events_endpoint);
    free (self->sys);
    free (self->endpoint);
    free (self->dir);
    free (self);
}


//  --------------------------------------------------------------------------
//  Accessors

const char *
zp_ctx_endpoint (zp_ctx_t *self)
{
    return self? self->endpoint: zp__fail (EINVAL, NULL);
}

zp_state_t *
zp_ctx_state (zp_ctx_t *self)
{
    return self? self->state: zp__fail (EINVAL, NULL);
}

zp_worker_t *
zp_ctx_main (zp_ctx_t *self)
{
    return self? self->main: zp__fail (EINVAL, NULL);
}

const char *
zp_ctx_public_key (zp_ctx_t *self)
{
    if (!self)
        return zp__fail (EINVAL, NULL);
    return self->keys? zcert_public_txt (self->keys->store): zp__fail (0, NULL);
}

int
zp_ctx_allow (zp_ctx_t *self, const char *public_key)
{
    byte decoded [32];
    if (!self || !self->keys || !public_key || strlen (public_key) != 40
    ||  !zmq_z85_decode (decoded, public_key))
        return zp__fail (EINVAL, -1);
    //  Only the public half is saved; the secret half is a placeholder
    zcert_t *cert = zcert_new_from (decoded, decoded);
    int rc = cert? s_admit (self, cert): zp__fail (ENOMEM, -1);
    zcert_destroy (&cert);
    return rc;
}

void
zp_ctx_set_grace (zp_ctx_t *self, int grace_ms)
{
    if (self && grace_ms >= 0)
        self->grace = grace_ms;
}

int
zp_ctx_set_restart (zp_ctx_t *self, zp_restart_t policy)
{
    if (!self || policy < ZP_RESTART_TEMPORARY || policy > ZP_RESTART_PERMANENT)
        return zp__fail (EINVAL, -1);
    self->supervision.policy = policy;
    return 0;
}

int
zp_ctx_set_strategy (zp_ctx_t *self, zp_strategy_t strategy)
{
    if (!self || strategy < ZP_STRATEGY_ONE_FOR_ONE || strategy > ZP_STRATEGY_REST_FOR_ONE
    ||  zlistx_size (self->procs))
        return zp__fail (EINVAL, -1);
    self->supervision.strategy = strategy;
    return 0;
}

int
zp_ctx_set_intensity (zp_ctx_t *self, int max_restarts, int period_ms)
{
    if (!self || max_restarts < 0 || period_ms < 0)
        return zp__fail (EINVAL, -1);
    self->supervision.max_restarts = max_restarts;
    self->supervision.period = period_ms;
    return 0;
}

int
zp_ctx_set_backoff (zp_ctx_t *self, int initial_ms, int max_ms)
{
    if (!self || initial_ms < 0 || max_ms < initial_ms)
        return zp__fail (EINVAL, -1);
    self->supervision.backoff_initial = initial_ms;
    self->supervision.backoff_max = max_ms;
    return 0;
}

size_t
zp_ctx_running (zp_ctx_t *self)
{
    if (!self)
        return 0;
    while (zp__ctx_wait_event (self, 0) == 0)
        ;
    size_t running = 0;
    for (zp_proc_t *proc = (zp_proc_t *) zlistx_first (self->procs); proc;
         proc = (zp_proc_t *) zlistx_next (self->procs))
        running += !zp__proc_exited (proc);
    return running;
}

zp_proc_t *
zp_ctx_proc (zp_ctx_t *self, const char *name)
{
    if (!self || !name)
        return zp__fail (EINVAL, NULL);
    for (zp_proc_t *proc = (zp_proc_t *) zlistx_first (self->procs); proc;
         proc = (zp_proc_t *) zlistx_next (self->procs))
        if (streq (zp_proc_name (proc), name))
            return proc;
    return zp__fail (ENOENT, NULL);
}


//  --------------------------------------------------------------------------
//  Internals for the pools: the grace period, reserved-key writes, and
//  objects destroyed with the context

const char *
zp__ctx_dir (zp_ctx_t *self)
{
    return self->dir;
}

int
zp__ctx_grace (zp_ctx_t *self)
{
    return self->grace;
}

void
zp__ctx_publish (zp_ctx_t *self, const char *key, const char *value)
{
    if (!self->sys) {
        //  A worker's own context: through its state handle
        zp__state_notice (self->state, key, value);
        return;
    }
    if (!self->notices) {
        self->notices = zp__sock_new (ZMQ_PUSH);
        if (!self->notices)
            return;
        zsock_set_sndhwm (self->notices, 0);
        if (zsock_connect (self->notices, "%s", self->sys) < 0) {
            zsock_destroy (&self->notices);
            return;
        }
    }
    zp__store_notice (self->notices, &self->sys_sent, key, value);
}

int
zp__ctx_attach (zp_ctx_t *self, void *item, czmq_destructor *destructor)
{
    attached_t *attached = (attached_t *) zmalloc (sizeof (attached_t));
    if (!attached)
        return zp__fail (ENOMEM, -1);
    attached->item = item;
    attached->destructor = destructor;
    if (!zlistx_add_end (self->attached, attached)) {
        free (attached);
        return zp__fail (ENOMEM, -1);
    }
    return 0;
}

void
zp__ctx_detach (zp_ctx_t *self, void *item)
{
    for (attached_t *attached = (attached_t *) zlistx_first (self->attached); attached;
         attached = (attached_t *) zlistx_next (self->attached))
        if (attached->item == item) {
            zlistx_delete (self->attached, zlistx_cursor (self->attached));
            return;
        }
}


//  --------------------------------------------------------------------------
//  Serve the store on another endpoint too

const char *
zp_ctx_bind (zp_ctx_t *self, const char *endpoint)
{
    //  A worker's own context has no store to bind
    if (!self || !self->store || !endpoint || !*endpoint)
        return zp__fail (EINVAL, NULL);
    char *bound = NULL;
    int rc = EINVAL;
    if (zsock_send (self->store, "ss", "BIND", endpoint) < 0
    ||  zsock_recv (self->store, "si", &bound, &rc) < 0)
        return zp__fail (EINTR, NULL);
    if (rc != 0) {
        zstr_free (&bound);
        return zp__fail (rc, NULL);
    }
    zlistx_add_end (self->bound, bound);
    return bound;
}


//  --------------------------------------------------------------------------
//  Reaper events: a worker exited

int
zp__ctx_wait_event (zp_ctx_t *self, int64_t deadline)
{
    void *events = zsock_resolve (self->events);
    int rc = zp__wait_socket (events, ZMQ_POLLIN, NULL, deadline);
    if (rc <= 0)
        return zp__fail (rc == 0? ETIMEDOUT: errno, -1);
    int pid, status, new_pid, stopped;
    if (zsock_recv (self->events, "iiii", &pid, &status, &new_pid, &stopped) < 0)
        return zp__fail (EINTR, -1);
    for (zp_proc_t *proc = (zp_proc_t *) zlistx_first (self->procs); proc;
         proc = (zp_proc_t *) zlistx_next (self->procs))
        if (zp__proc_is (proc, pid)) {
            if (new_pid > 0)
                zp__proc_set_pid (proc, new_pid);
            else
            //  A restarted worker counts by its final exit only
            if (zp__proc_set_exited (proc, status, stopped != 0) && !self->failure)
                self->failure = status;
        }
    return 0;
}

int
zp_ctx_wait_all (zp_ctx_t *self, int timeout_ms)
{
    if (!self)
        return zp__fail (EINVAL, -1);
    int64_t deadline = zp__deadline (timeout_ms);
    while (zp_ctx_running (self) > 0)
        if (zp__ctx_wait_event (self, deadline) < 0)
            return -1;
    return self->failure;
}


//  --------------------------------------------------------------------------
//  In the child: become the worker, run it, leave. Never returns.

//  The worker of this process, if it is a worker
static zp_worker_t *s_worker = NULL;

//  A worker body that calls exit () still closes its sockets before CZMQ's
//  own atexit handler (registered earlier, so run later) looks for them
static void
s_worker_atexit (void)
{
    zp__worker_destroy (&s_worker);
}

static void
s_child_run (zp_ctx_t *self, const char *name, zp_worker_fn *fn, void *props,
             int control_fd, pid_t parent, int lane_fd, int mailbox_fd, uint64_t seq)
{
#if defined (PR_SET_PDEATHSIG)
    //  Die with the parent; if it is already gone, the signal will not come
    prctl (PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid () != parent)
        _exit (EXIT_FAILURE);
    //  Ready: we run and die with our parent; our mailbox's file is bound
    //  (mail sent to us waits for us) and our watchers start after seq, so
    //  nothing changed after zp_ctx_spawn returns can be missed. The rest
    //  of our start-up goes on while our parent does.
    int status = 0;
    if (write (control_fd, &status, sizeof status) != (ssize_t) sizeof status)
        status = EPIPE;
    //  Other processes' lanes and channels are not ours to keep open
    int ours [] = { lane_fd, mailbox_fd, control_fd };
    zp__lane_fd_close_marked (ours, 3);
    zp__lane_fd_mark (mailbox_fd, false);
    s_parent_grace = self->grace;
    //  Our own ZeroMQ context from here on (CZMQ dropped the inherited one)
    //  takes the mailbox over. Should that fail (no descriptor or memory
    //  left) we exit with a failure, which the reaper reports.
    if (status == 0) {
        s_worker = zp__worker_new (name, self->dir, self->endpoint, self->keys, lane_fd,
                                   self->shared, &seq, mailbox_fd, control_fd);
        if (!s_worker || zp__worker_start (s_worker) < 0) {
            status = errno? errno: EIO;
            zsys_error ("zproc: worker %s cannot start: %s", name, zp_strerror (status));
        }
    }
    else {
        zp__lane_fd_close (lane_fd);
        zp__lane_fd_close (control_fd);
        close (mailbox_fd);
    }
    if (s_worker && status == 0) {
        atexit (s_worker_atexit);
        fn (s_worker, props);
    }
    zp__worker_destroy (&s_worker);
    zsys_shutdown ();
    fflush (NULL);
    //  Not exit: the parent's atexit handlers (zsys_shutdown of its sockets,
    //  the program's own) must not run in a copy of it
    _exit (status? EXIT_FAILURE: EXIT_SUCCESS);
}

//  In the parent: the worker's report, 0 or its errno
int
zp__ctx_await_ready (int control_fd)
{
    int64_t deadline = zp__deadline (SPAWN_TIMEOUT);
    struct pollfd item = { control_fd, POLLIN, 0 };
    while (true) {
        if (zsys_interrupted)
            return EINTR;
        int rc = poll (&item, 1, zp__remaining (deadline));
        if (rc == 0)
            return ETIMEDOUT;
        if (rc > 0)
            break;
        if (errno != EINTR)
            return errno;
    }
    int status;
    ssize_t size = read (control_fd, &status, sizeof status);
    //  Nothing to read: the child died before it could report
    return size == (ssize_t) sizeof status? status: ENOTCONN;
}


//  --------------------------------------------------------------------------
//  Fork workers: for zp_ctx_spawn, zp_ctx_start_all and pools, and for the
//  reaper's restarts

//  Make what a worker needs before its fork: its control channel (it
//  reports on it once it is ready, then listens on it for our stop,
//  zp__worker_stop), its direct lane to the store and its mailbox's
//  socket, all marked as lanes are, so that no other worker keeps an end
//  open. 0, or -1 with errno and nothing made.
static int
s_fork_prepare (zp_ctx_t *self, zp_fork_t *item)
{
    item->child_control = item->control_fd = item->mailbox = -1;
    item->lane [0] = item->lane [1] = -1;
    int control [2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) < 0)
        return -1;
    zp__lane_fd_mark (control [0], true);
    zp__lane_fd_mark (control [1], true);
    item->control_fd = control [0];
    item->child_control = control [1];
    //  The lane: when this context has the store, a socketpair whose end
    //  the store adopts after the fork; in a worker's own context, one the
    //  store adopted already (SCM_RIGHTS on the lender's lane). Without
    //  one the worker uses the endpoint.
    if (self->adopt >= 0
    &&  socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, item->lane) == 0) {
        zp__lane_fd_mark (item->lane [0], true);
        zp__lane_fd_mark (item->lane [1], true);
    }
    else
    if (self->lender) {
        pthread_mutex_lock (&self->lender_lock);
        item->lane [1] = zp__state_lane (self->lender);
        pthread_mutex_unlock (&self->lender_lock);
    }
    //  The mailbox is bound here, before the fork, and the worker takes the
    //  socket over: a sender's connection waits for it from now
    item->mailbox = zp__mailbox_listen (self->dir, item->name);
    if (item->mailbox < 0) {
        int saved = errno;
        zp__lane_fd_close (item->control_fd);
        zp__lane_fd_close (item->child_control);
        zp__lane_fd_close (item->lane [0]);
        zp__lane_fd_close (item->lane [1]);
        item->control_fd = item->child_control = -1;
        return zp__fail (saved, -1);
    }
    zp__lane_fd_mark (item->mailbox, true);
    return 0;
}

//  After the fork, in this process: the child's ends are its own; the
//  store takes the lane's other end (if it cannot, the worker sees end of
//  stream on its first call and fails to start, ENOTCONN). A fork that
//  failed leaves nothing behind, its mailbox's file included.
static void
s_fork_settle (zp_ctx_t *self, zp_fork_t *item)
{
    zp__lane_fd_close (item->child_control);
    zp__lane_fd_close (item->lane [1]);
    zp__lane_fd_close (item->mailbox);
    if (item->lane [0] >= 0
    &&  (item->pid < 0 || send (self->adopt, &item->lane [0], sizeof item->lane [0],
                                MSG_NOSIGNAL) < 0))
        zp__lane_fd_close (item->lane [0]);
    if (item->pid < 0) {
        zp__lane_fd_close (item->control_fd);
        item->control_fd = -1;
        //  Nobody will take the mailbox we bound
        zp__mailbox_remove (self->dir, item->name);
    }
}

//  Fork count workers, count at most FORK_BATCH
static void
s_fork_batch (zp_ctx_t *self, zp_fork_t *forks, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        forks [index].pid = -1;
        forks [index].err = s_fork_prepare (self, &forks [index]) < 0? errno: 0;
    }
    //  Unwritten output would be written twice, once by each process
    fflush (NULL);
    pid_t parent = getpid ();
    for (size_t index = 0; index < count; index++) {
        zp_fork_t *item = &forks [index];
        if (item->err)
            continue;
        //  Where the worker's watchers start: every change made before its
        //  fork is behind them, every one made after we return ahead
        uint64_t seq = self->shared? __atomic_load_n (&self->shared->seq, __ATOMIC_ACQUIRE): 0;
        item->pid = fork ();
        if (item->pid == 0)
            s_child_run (self, item->name, item->fn, item->props, item->child_control,
                         parent, item->lane [1], item->mailbox, seq);
        if (item->pid < 0)
            item->err = errno;
    }
    for (size_t index = 0; index < count; index++)
        if (forks [index].child_control >= 0)
            s_fork_settle (self, &forks [index]);
}

void
zp__ctx_fork_all (zp_ctx_t *self, zp_fork_t *forks, size_t count)
{
    //  In batches: until its fork a worker holds three descriptors more
    //  than it keeps, and a large start must not run out of them
    for (size_t first = 0; first < count; first += FORK_BATCH)
        s_fork_batch (self, forks + first,
                      count - first < FORK_BATCH? count - first: FORK_BATCH);
}

pid_t
zp__ctx_fork (zp_ctx_t *self, const char *name, zp_worker_fn *fn, void *props,
              int *control_fd)
{
    zp_fork_t one = { .name = name, .fn = fn, .props = props };
    zp__ctx_fork_all (self, &one, 1);
    if (one.pid < 0)
        return zp__fail (one.err, -1);
    *control_fd = one.control_fd;
    return one.pid;
}


//  --------------------------------------------------------------------------
//  Fork one worker now

//  True while pid runs (a zombie has ended)
static bool
s_pid_alive (pid_t pid)
{
    if (kill (pid, 0) < 0 && errno == ESRCH)
        return false;
    char path [32], state = 0;
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    //  "pid (comm) state ...": comm may hold spaces and parentheses
    char line [512];
    if (file && fgets (line, sizeof line, file)) {
        char *end = strrchr (line, ')');
        if (end && end [1] == ' ')
            state = end [2];
    }
    if (file)
        fclose (file);
    return state != 'Z';
}

//  True when a worker (of any context on this store) has that name
static bool
s_name_taken (zp_ctx_t *self, const char *name)
{
    if (zp_ctx_proc (self, name))
        return true;
    //  Taken when a worker of any context on this store has it...
    char *mailbox = zp__mailbox_path (self->dir, "mbox", name);
    bool taken = !mailbox || access (mailbox, F_OK) == 0;
    zstr_free (&mailbox);
    if (!taken)
        return false;
    //  ...unless its worker died with its supervisor, killed (nobody was
    //  left to clean up after it): its last pid is gone
    char *key = zsys_sprintf ("%s%s/pid", ZP_PROC_PREFIX, name);
    int64_t pid = 0;
    if (key && zp_state_get_int (self->state, key, &pid) == 0 && pid > 0
    &&  !s_pid_alive ((pid_t) pid)) {
        zp__mailbox_remove (self->dir, name);
        taken = false;
    }
    zstr_free (&key);
    return taken;
}

bool
zp__ctx_name_free (zp_ctx_t *self, const char *name)
{
    return zp__name_valid (name) && !s_name_taken (self, name);
}

//  The next name of an unnamed worker, "worker-N" or "OWNER.N"
static char *
s_default_name (zp_ctx_t *self)
{
    return zsys_sprintf ("%s%zu", self->name_prefix, ++self->worker_nbr);
}

//  A worker forked, whose report is still to come
typedef struct {
    zp_proc_t *proc;            //  Its handle, in self->procs
    void *handle;               //  Where it is in self->procs
    int control_fd;             //  Its control channel: its report comes there
} pending_t;

//  After a worker's fork: its handle, in self->procs, and the reaper
//  tracking it (its exit, its restarts; status "starting") while it
//  starts: the settings go by value, with no reply to wait for.
//  s_spawn_finish awaits its report. 0, or -1 with errno (the fork's
//  failure, or ENOMEM: then the worker is killed and its name is free)
static int
s_spawn_track (zp_ctx_t *self, zp_fork_t *forked, pending_t *pending)
{
    if (forked->pid < 0)
        return zp__fail (forked->err, -1);
    pending->control_fd = forked->control_fd;
    pending->proc = zp__proc_new (self, forked->name, forked->pid);
    pending->handle = pending->proc? zlistx_add_end (self->procs, pending->proc): NULL;
    if (!pending->handle) {
        zp__proc_destroy (&pending->proc);
        zp__lane_fd_close (pending->control_fd);
        kill (forked->pid, SIGKILL);
        waitpid (forked->pid, NULL, 0);
        zp__mailbox_remove (self->dir, forked->name);
        return zp__fail (ENOMEM, -1);
    }
    zp_supervision_t supervision = self->supervision;
    supervision.fn = forked->fn;
    supervision.props = forked->props;
    supervision.grace = self->grace;
    zsock_send (self->reaper, "sisb", "TRACK", (int) forked->pid, forked->name,
                &supervision, sizeof supervision);
    return 0;
}

//  Await a started worker's report and tell the reaper (status "running"
//  when it is ready), which takes its control channel, to stop it; the
//  reaper signals once that notice is on its way to the store, which the
//  caller awaits (s_spawn_tracked) after the reports of all the workers it
//  started. Its handle, or NULL with errno when it could not start (then
//  it is stopped, reaped and reported here alone: its handle goes, its
//  name is free)
static zp_proc_t *
s_spawn_finish (zp_ctx_t *self, pending_t *pending)
{
    int err = zp__ctx_await_ready (pending->control_fd);
    zsock_send (self->reaper, "siii", "READY", (int) zp_proc_pid (pending->proc), err == 0,
                pending->control_fd);
    if (err == 0)
        return pending->proc;
    zp__proc_set_stopped (pending->proc);
    zp_proc_kill (pending->proc, SIGKILL);
    zp_proc_wait (pending->proc, -1);
    zlistx_delete (self->procs, pending->handle);
    return zp__fail (err, NULL);
}

//  Await the reaper's signals for count READY commands: the "running"
//  notices are then on their way to the store
static void
s_spawn_tracked (zp_ctx_t *self, size_t count)
{
    while (count--)
        s_actor_wait (self->reaper);
}

zp_proc_t *
zp_ctx_spawn (zp_ctx_t *self, const char *name, zp_worker_fn *fn, void *props)
{
    if (!self || !fn || self->owner != getpid ())
        return zp__fail (EINVAL, NULL);
    char *default_name = name? NULL: s_default_name (self);
    zp_fork_t forked = { .name = name? name: default_name, .fn = fn, .props = props };
    pending_t pending;
    int rc = -1;
    if (!zp__ctx_name_free (self, forked.name))
        errno = EINVAL;
    else {
        zp__ctx_fork_all (self, &forked, 1);
        rc = s_spawn_track (self, &forked, &pending);
    }
    zstr_free (&default_name);
    if (rc < 0)
        return NULL;
    zp_proc_t *proc = s_spawn_finish (self, &pending);
    int saved = errno;
    s_spawn_tracked (self, 1);
    return proc? proc: zp__fail (saved, NULL);
}


//  --------------------------------------------------------------------------
//  Seed parity: register workers, start them all later

int
zp_ctx_process_factory (zp_ctx_t *self, void *props, zp_worker_fn *fn, ...)
{
    if (!self || !fn)
        return zp__fail (EINVAL, -1);
    va_list args;
    va_start (args, fn);
    for (; fn; fn = va_arg (args, zp_worker_fn *)) {
        factory_t *entry = (factory_t *) zmalloc (sizeof (factory_t));
        if (!entry) {
            va_end (args);
            return zp__fail (ENOMEM, -1);
        }
        entry->name = s_default_name (self);
        entry->fn = fn;
        entry->props = props;
        zlistx_add_end (self->factory, entry);
        //  Known from now: messages to it wait for it in its mailbox
        zsock_send (self->reaper, "ss", "REGISTER", entry->name);
    }
    va_end (args);
    return 0;
}

int
zp_ctx_start_all (zp_ctx_t *self)
{
    if (!self || self->owner != getpid ())
        return zp__fail (EINVAL, -1);
    //  Fork them all, then await their reports together: they start in
    //  parallel, not one after the other
    size_t count = zlistx_size (self->factory);
    zp_fork_t *forks = (zp_fork_t *) calloc (count? count: 1, sizeof (zp_fork_t));
    pending_t *pending = (pending_t *) calloc (count? count: 1, sizeof (pending_t));
    if (!forks || !pending) {
        free (forks);
        free (pending);
        return zp__fail (ENOMEM, -1);
    }
    int first_error = 0;
    size_t valid = 0, started = 0;
    for (factory_t *entry = (factory_t *) zlistx_first (self->factory); entry;
         entry = (factory_t *) zlistx_next (self->factory))
        if (zp__ctx_name_free (self, entry->name))
            forks [valid++] = (zp_fork_t) {
                .name = entry->name, .fn = entry->fn, .props = entry->props
            };
        else
        if (!first_error)
            first_error = EINVAL;
    zp__ctx_fork_all (self, forks, valid);
    for (size_t index = 0; index < valid; index++)
        if (s_spawn_track (self, &forks [index], &pending [started]) == 0)
            started++;
        else
        if (!first_error)
            first_error = errno;
    //  The entries held the names until now
    zlistx_purge (self->factory);
    free (forks);
    for (size_t index = 0; index < started; index++)
        if (!s_spawn_finish (self, &pending [index]) && !first_error)
            first_error = errno;
    s_spawn_tracked (self, started);
    free (pending);
    return first_error? zp__fail (first_error, -1): 0;
}
