/*  =========================================================================
    test-supervise.c - supervision: process notices in the state, restart
    policies, intensity and backoff, nested workers, parent death, scale,
    stale directories
    =========================================================================
*/

#include "harness.h"
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

//  The value of key, which must exist
static int64_t
s_get_int (zp_state_t *state, const char *key)
{
    int64_t value = -1;
    ASSERT_EQ (zp_state_get_int (state, key, &value), 0);
    return value;
}

//  Wait until $proc/NAME/status equals status
static void
s_expect_status (zp_state_t *state, const char *name, const char *status)
{
    char *key = zsys_sprintf ("$proc/%s/status", name);
    int rc = zp_state_get_when_equal_str (state, key, status, test_ms (5000));
    if (rc != 0) {
        char *actual = zp_state_get_str (state, key);
        test_fail (__FILE__, __LINE__, errno, "%s is %s, expected %s", key,
                   actual? actual: "(none)", status);
    }
    zstr_free (&key);
}

static void
s_worker_wait_term (zp_worker_t *self, void *props)
{
    zmsg_t *msg = zp_worker_recv (self, -1);
    zmsg_destroy (&msg);
}

static void
s_worker_crash (zp_worker_t *self, void *props)
{
    signal (SIGSEGV, SIG_DFL);
    raise (SIGSEGV);
}


TEST_IMPL (supervise_notices)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "waiter", s_worker_wait_term, NULL);
    ASSERT_NOT_NULL (proc);
    s_expect_status (state, "waiter", "running");
    ASSERT_EQ (s_get_int (state, "$proc/waiter/pid"), zp_proc_pid (proc));

    //  A normal exit and a crash, each waited for through the state
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "go");
    ASSERT_EQ (zp_proc_send (proc, &msg), 0);
    s_expect_status (state, "waiter", "exited");
    ASSERT_EQ (s_get_int (state, "$proc/waiter/code"), 0);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "crasher", s_worker_crash, NULL));
    s_expect_status (state, "crasher", "killed");
    ASSERT_EQ (s_get_int (state, "$proc/crasher/code"), 128 + SIGSEGV);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (supervise_reserved_keys)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_FAIL_ERRNO (zp_state_set_str (state, "$proc/x/status", "running"), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_incr (state, "$anything", 1, NULL), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "$x", NULL, "v"), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_delete (state, "$x"), EACCES);
    //  Reading them is fine
    ASSERT_NULL_ERRNO (zp_state_get_str (state, "$proc/x/status"), ENOENT);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Crashes on its first two runs; on the third, answers one mailbox
//  message through the state and exits 0
static void
s_worker_flaky (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    int64_t runs = 0;
    ASSERT_EQ (zp_state_incr (state, "runs", 1, &runs), 0);
    if (runs < 3)
        s_worker_crash (self, props);
    zmsg_t *msg = zp_worker_recv (self, -1);
    ASSERT_NOT_NULL (msg);
    char *body = zmsg_popstr (msg);
    ASSERT_EQ (zp_state_set_str (state, "got", body), 0);
    zstr_free (&body);
    zmsg_destroy (&msg);
}

TEST_IMPL (supervise_transient_restart)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TRANSIENT), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 10, 100), 0);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "flaky", s_worker_flaky, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "runs", "3", test_ms (5000)), 0);
    s_expect_status (state, "flaky", "running");

    //  Same name, same handle, same mailbox; a new pid
    ASSERT_EQ (s_get_int (state, "$proc/flaky/pid"), zp_proc_pid (proc));
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "still here");
    ASSERT_EQ (zp_proc_send (proc, &msg), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    char *got = zp_state_get_str (state, "got");
    ASSERT_STR_EQ (got, "still here");
    zstr_free (&got);
    //  A transient worker that exits normally is not restarted
    s_expect_status (state, "flaky", "exited");
    ASSERT_EQ (s_get_int (state, "runs"), 3);
    zp_ctx_destroy (&ctx);
    return 0;
}


static void
s_worker_exit7 (zp_worker_t *self, void *props)
{
    zp_state_incr (zp_worker_state (self), "runs", 1, NULL);
    exit (7);
}

TEST_IMPL (supervise_intensity)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_PERMANENT), 0);
    ASSERT_EQ (zp_ctx_set_intensity (ctx, 3, 60000), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 1, 10), 0);
    ASSERT_FAIL_ERRNO (zp_ctx_set_restart (ctx, (zp_restart_t) 42), EINVAL);
    ASSERT_FAIL_ERRNO (zp_ctx_set_intensity (ctx, -1, 10), EINVAL);
    ASSERT_FAIL_ERRNO (zp_ctx_set_backoff (ctx, 100, 10), EINVAL);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "loop", s_worker_exit7, NULL);
    ASSERT_NOT_NULL (proc);
    //  A crash loop: the first run and 3 restarts, then it is given up
    ASSERT_EQ (zp_proc_wait (proc, test_ms (10000)), 7);
    s_expect_status (state, "loop", "failed");
    ASSERT_EQ (s_get_int (state, "runs"), 4);
    ASSERT_EQ (s_get_int (state, "$proc/loop/code"), 7);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Records when each run starts; fails the first four runs
static void
s_worker_timed (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    int64_t run = 0;
    ASSERT_EQ (zp_state_incr (state, "runs", 1, &run), 0);
    char key [32];
    snprintf (key, sizeof key, "start/%" PRId64, run);
    ASSERT_EQ (zp_state_set_int (state, key, test_now_ms ()), 0);
    exit (run < 5? 1: 0);
}

TEST_IMPL (supervise_backoff)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TRANSIENT), 0);
    ASSERT_EQ (zp_ctx_set_intensity (ctx, 10, 60000), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 100, 300), 0);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "timed", s_worker_timed, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (10000)), 0);
    //  Waits of at least 100, 200, 300 (the cap), 300 ms between runs
    int64_t expected [] = { 100, 200, 300, 300 };
    for (int run = 1; run < 5; run++) {
        char key [32];
        snprintf (key, sizeof key, "start/%d", run);
        int64_t before = s_get_int (state, key);
        snprintf (key, sizeof key, "start/%d", run + 1);
        int64_t after = s_get_int (state, key);
        ASSERT_GE (after - before, expected [run - 1]);
    }
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Three levels: top -> level1 -> level2 -> level3, each a worker that
//  spawns the next with zp_worker_spawn and records its pid in the state

static void s_worker_level (zp_worker_t *self, void *props);

static void
s_worker_level (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    int level = (int) (intptr_t) props;
    char key [32];
    snprintf (key, sizeof key, "pid/%d", level);
    ASSERT_EQ (zp_state_set_int (state, key, getpid ()), 0);
    if (level < 3) {
        zp_proc_t *child = zp_worker_spawn (self, NULL, s_worker_level,
                                            (void *) (intptr_t) (level + 1));
        ASSERT_NOT_NULL (child);
        //  Default names follow the parent's: level1.1, level1.1.1
        snprintf (key, sizeof key, "name/%d", level + 1);
        ASSERT_EQ (zp_state_set_str (state, key, zp_proc_name (child)), 0);
    }
    zmsg_t *msg = zp_worker_recv (self, -1);
    zmsg_destroy (&msg);
}

TEST_IMPL (supervise_nested_three_levels)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "level1", s_worker_level, (void *) 1));
    //  Level 3 writes its pid, level 2 the name it got: wait for both
    ASSERT_EQ (zp_state_get_when_available (state, "pid/3", test_ms (5000)), 0);
    ASSERT_EQ (zp_state_get_when_available (state, "name/3", test_ms (5000)), 0);
    char *name = zp_state_get_str (state, "name/3");
    ASSERT_STR_EQ (name, "level1.1.1");
    zstr_free (&name);
    pid_t pids [3];
    for (int level = 1; level <= 3; level++) {
        char key [32];
        snprintf (key, sizeof key, "pid/%d", level);
        pids [level - 1] = (pid_t) s_get_int (state, key);
    }
    //  Every level is stopped and reaped with the context
    zp_ctx_destroy (&ctx);
    for (int level = 0; level < 3; level++)
        ASSERT_EQ (test_wait_gone (pids [level], test_ms (3000)), 0);
    ASSERT (test_no_children ());
    return 0;
}


//  A parent that builds a two-level tree, reports the pids on a pipe, and
//  waits to be killed
static void
s_worker_reporting_level (zp_worker_t *self, void *props)
{
    int fd = (int) (intptr_t) props;
    pid_t pid = getpid ();
    ASSERT_EQ (write (fd, &pid, sizeof pid), (ssize_t) sizeof pid);
    if (strchr (zp_worker_name (self), '.') == NULL)
        ASSERT_NOT_NULL (zp_worker_spawn (self, NULL, s_worker_reporting_level, props));
    zmsg_t *msg = zp_worker_recv (self, -1);
    zmsg_destroy (&msg);
}

TEST_IMPL (supervise_parent_killed_nested)
{
    int report [2];
    ASSERT_EQ (pipe (report), 0);
    pid_t parent = fork ();
    ASSERT (parent >= 0);
    if (parent == 0) {
        close (report [0]);
        zp_ctx_t *ctx = zp_ctx_new ();
        if (!ctx || !zp_ctx_spawn (ctx, "top", s_worker_reporting_level,
                                   (void *) (intptr_t) report [1]))
            _exit (1);
        pause ();
        _exit (0);
    }
    close (report [1]);
    pid_t pids [2];
    ASSERT_EQ (test_read_exact (report [0], pids, sizeof pids, test_ms (5000)), 0);
    close (report [0]);
    //  SIGKILL the parent: its worker and the worker's worker go too
    ASSERT_EQ (kill (parent, SIGKILL), 0);
    ASSERT_EQ (test_wait_child (parent, test_ms (5000)), 128 + SIGKILL);
    int64_t start = test_now_ms ();
    for (int index = 0; index < 2; index++)
        ASSERT_EQ (test_wait_gone (pids [index], test_ms (3000)), 0);
    ASSERT_LE (test_now_ms () - start, test_ms (3000));
    //  The next context removes the directory the dead one left
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  True when no process in /proc has this process as its parent
static bool
s_no_zombies (void)
{
    DIR *proc = opendir ("/proc");
    if (!proc)
        return true;
    bool none = true;
    struct dirent *entry;
    while (none && (entry = readdir (proc))) {
        char path [300];
        snprintf (path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *file = fopen (path, "r");
        if (!file)
            continue;
        int pid, ppid;
        char state;
        if (fscanf (file, "%d %*s %c %d", &pid, &state, &ppid) == 3 && ppid == getpid ())
            none = false;
        fclose (file);
    }
    closedir (proc);
    return none;
}

TEST_IMPL (supervise_200_workers)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    for (int index = 0; index < 200; index++)
        ASSERT_NOT_NULL (zp_ctx_spawn (ctx, NULL, s_worker_wait_term, NULL));
    ASSERT_EQ (zp_ctx_running (ctx), 200);
    //  Each one confirmed running by its notice
    zlistx_t *keys = zp_state_keys (state, "$proc/");
    ASSERT_NOT_NULL (keys);
    size_t running = 0;
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys))
        if (strlen (key) > 7 && streq (key + strlen (key) - 7, "/status")) {
            char *status = zp_state_get_str (state, key);
            running += status && streq (status, "running");
            zstr_free (&status);
        }
    zlistx_destroy (&keys);
    ASSERT_EQ (running, 200);
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    ASSERT (s_no_zombies ());
    return 0;
}


//  zp_ctx_spawn returns once its "running" notice is on its way to the
//  store: a read that follows, on any handle, sees it, even while the
//  store still has the notices of the spawns before to take in
TEST_IMPL (supervise_running_when_spawned)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    for (int index = 0; index < 100; index++) {
        zp_proc_t *proc = zp_ctx_spawn (ctx, NULL, s_worker_wait_term, NULL);
        ASSERT_NOT_NULL (proc);
        char *key = zsys_sprintf ("$proc/%s/status", zp_proc_name (proc));
        char *status = zp_state_get_str (state, key);
        ASSERT_STR_EQ (status, "running");
        zstr_free (&status);
        zstr_free (&key);
    }
    zp_ctx_destroy (&ctx);
    return 0;
}


//  How many descriptors this process has open
static int
s_open_fds (void)
{
    int count = 0;
    DIR *dir = opendir ("/proc/self/fd");
    struct dirent *entry;
    while (dir && (entry = readdir (dir)))
        count += entry->d_name [0] != '.';
    if (dir)
        closedir (dir);
    //  Not the directory's own
    return count - 1;
}

//  zp_ctx_start_all forks its workers back to back, but needs no more
//  descriptors at once than what the workers keep in the parent (a control
//  channel, a lane end, a pidfd each) and a bounded batch more: with room
//  for what 100 workers keep and 100 descriptors more, all 100 start
TEST_IMPL (supervise_start_all_fd_limit)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    for (int index = 0; index < 100; index++)
        ASSERT_EQ (zp_ctx_process_factory (ctx, NULL, s_worker_wait_term, NULL), 0);
    struct rlimit limit;
    ASSERT_EQ (getrlimit (RLIMIT_NOFILE, &limit), 0);
    //  Descriptors are taken lowest first: the limit leaves that many free
    limit.rlim_cur = (rlim_t) s_open_fds () + 100 * 3 + 100;
    ASSERT_EQ (setrlimit (RLIMIT_NOFILE, &limit), 0);
    ASSERT_EQ (zp_ctx_start_all (ctx), 0);
    ASSERT_EQ (zp_ctx_running (ctx), 100);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (supervise_stale_dir)
{
    //  A directory whose owner is gone, as SIGKILL leaves it
    pid_t dead = fork ();
    ASSERT (dead >= 0);
    if (dead == 0)
        _exit (0);
    ASSERT_EQ (test_wait_child (dead, test_ms (5000)), 0);
    const char *tmpdir = getenv ("TMPDIR");
    char *dir = zsys_sprintf ("%s/zproc-staleXXXXXX", tmpdir && *tmpdir? tmpdir: "/tmp");
    ASSERT_NOT_NULL (mkdtemp (dir));
    char *owner = zsys_sprintf ("%s/owner", dir);
    FILE *file = fopen (owner, "w");
    ASSERT_NOT_NULL (file);
    fprintf (file, "%d\n", (int) dead);
    fclose (file);
    //  A directory of a live owner stays
    char *live = zsys_sprintf ("%s/zproc-liveXXXXXX", tmpdir && *tmpdir? tmpdir: "/tmp");
    ASSERT_NOT_NULL (mkdtemp (live));
    char *live_owner = zsys_sprintf ("%s/owner", live);
    file = fopen (live_owner, "w");
    ASSERT_NOT_NULL (file);
    fprintf (file, "%d\n", (int) getpid ());
    fclose (file);

    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT (!test_path_exists (dir));
    ASSERT (test_path_exists (live));
    zp_ctx_destroy (&ctx);
    unlink (live_owner);
    rmdir (live);
    zstr_free (&live_owner);
    zstr_free (&live);
    zstr_free (&owner);
    zstr_free (&dir);
    return 0;
}
