/*  =========================================================================
    supervisor - a worker that keeps crashing, restarted, and no job lost

    Shows restart policies, process notices and why a job queue belongs in
    the state. The worker "crasher" takes jobs from a queue of 100 and
    aborts on every 7th job it takes, in the middle of it; the context
    restarts it (ZP_RESTART_TRANSIENT: after any abnormal exit) until the
    queue is empty and it returns. The parent follows the worker's life in
    its notices ($proc/crasher/status goes "restarting" on each crash), then
    checks that every job was done, once, with the right result:

        supervisor: 100 jobs done, 16 restarts, nothing lost

    Why the queue is in the state and not in the worker's mailbox: a message
    taken from a mailbox lives only in the worker's memory, so when the
    worker dies mid-job that job dies with it. A job in the state, under
    "jobs/N", stays there until it is finished: the worker first records
    the result under "done/N" and only then deletes "jobs/N". A crash before
    the result is recorded leaves the job in the queue for the restarted
    worker; a crash between the two steps leaves it too, and doing it again
    writes the same result to the same key. Every job is done, and each
    result is recorded exactly once, whenever the worker dies.
    =========================================================================
*/

#include <zproc/zproc.h>
#include <sys/resource.h>

#define JOBS            100
#define CRASH_EVERY     7       //  The worker aborts on every 7th job it takes

//  Do every job left in the queue, crashing now and then
static void
s_crasher (zp_worker_t *self, void *props)
{
    //  The crashes are on purpose: no core files for them
    struct rlimit no_core = { 0, 0 };
    setrlimit (RLIMIT_CORE, &no_core);

    zp_state_t *state = zp_worker_state (self);
    zlistx_t *jobs = zp_state_keys (state, "jobs/");
    if (!jobs) {
        fprintf (stderr, "supervisor: cannot list the jobs: %s\n", strerror (errno));
        exit (EXIT_FAILURE);
    }
    int taken = 0;
    const char *job = (const char *) zlistx_first (jobs);
    for (; job; job = (const char *) zlistx_next (jobs)) {
        int64_t number;
        if (zp_state_get_int (state, job, &number) < 0) {
            fprintf (stderr, "supervisor: cannot read %s: %s\n", job, strerror (errno));
            exit (EXIT_FAILURE);
        }
        int64_t result = number * number;
        if (++taken % CRASH_EVERY == 0)
            abort ();           //  Mid-job: the work is done, not recorded

        //  The result first, then the job off the queue
        char done [ZP_KEY_MAX + 1];
        snprintf (done, sizeof done, "done/%s", job + strlen ("jobs/"));
        if (zp_state_set_int (state, done, result) < 0
        ||  zp_state_delete (state, job) < 0) {
            fprintf (stderr, "supervisor: cannot finish %s: %s\n", job, strerror (errno));
            exit (EXIT_FAILURE);
        }
    }
    zlistx_destroy (&jobs);
}

//  Count the restarts in the worker's status notices until it is gone for
//  good; -1 with a message on stderr when the notices stop coming
static int
s_follow (zp_watch_t *watch)
{
    int restarts = 0;
    bool gone = false;
    while (!gone) {
        char *key, *status;
        if (zp_watch_next (watch, &key, &status, 10000) < 0) {
            fprintf (stderr, "supervisor: no news of the worker: %s\n", strerror (errno));
            return -1;
        }
        if (status && streq (status, "restarting"))
            restarts++;
        gone = !status || streq (status, "exited") || streq (status, "killed")
            || streq (status, "failed");
        zstr_free (&key);
        zstr_free (&status);
    }
    return restarts;
}

//  Every job is off the queue and has its result, and nothing else does
static bool
s_nothing_lost (zp_state_t *state)
{
    zlistx_t *left = zp_state_keys (state, "jobs/");
    zlistx_t *done = zp_state_keys (state, "done/");
    bool ok = left && done && zlistx_size (left) == 0 && zlistx_size (done) == JOBS;
    if (!ok)
        fprintf (stderr, "supervisor: %zu jobs left, %zu done\n",
                 left? zlistx_size (left): 0, done? zlistx_size (done): 0);
    for (int number = 0; ok && number < JOBS; number++) {
        char key [32];
        snprintf (key, sizeof key, "done/%03d", number);
        int64_t result = -1;
        if (zp_state_get_int (state, key, &result) < 0 || result != number * number) {
            fprintf (stderr, "supervisor: %s is wrong or missing\n", key);
            ok = false;
        }
    }
    zlistx_destroy (&left);
    zlistx_destroy (&done);
    return ok;
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "supervisor: cannot create a context: %s\n", strerror (errno));
        return EXIT_FAILURE;
    }
    zp_state_t *state = zp_ctx_state (ctx);

    //  The queue: jobs/000 to jobs/099, each a number to square
    bool ok = true;
    for (int number = 0; ok && number < JOBS; number++) {
        char key [32];
        snprintf (key, sizeof key, "jobs/%03d", number);
        ok = zp_state_set_int (state, key, number) == 0;
    }
    //  Restart the worker after each crash, at once: it crashes about
    //  JOBS / CRASH_EVERY times. Twice that in a minute means it is broken
    //  for good, and the context gives it up rather than loop for ever.
    ok = ok && zp_ctx_set_restart (ctx, ZP_RESTART_TRANSIENT) == 0
            && zp_ctx_set_intensity (ctx, 2 * JOBS / CRASH_EVERY, 60000) == 0
            && zp_ctx_set_backoff (ctx, 1, 10) == 0;
    if (!ok)
        fprintf (stderr, "supervisor: cannot set up: %s\n", strerror (errno));

    //  Watch before the worker starts, so that no notice is missed
    zp_watch_t *watch = ok? zp_watch_new (state, "$proc/crasher/status"): NULL;
    if (ok && !watch) {
        fprintf (stderr, "supervisor: cannot watch the notices: %s\n", strerror (errno));
        ok = false;
    }
    zp_proc_t *proc = ok? zp_ctx_spawn (ctx, "crasher", s_crasher, NULL): NULL;
    if (ok && !proc) {
        fprintf (stderr, "supervisor: cannot start the worker: %s\n", strerror (errno));
        ok = false;
    }
    int restarts = ok? s_follow (watch): -1;
    int code = restarts >= 0? zp_proc_wait (proc, 5000): -1;
    if (restarts >= 0 && code != 0)
        fprintf (stderr, "supervisor: the worker ended with %d\n", code);
    ok = code == 0 && s_nothing_lost (state);
    if (ok)
        printf ("supervisor: %d jobs done, %d restarts, nothing lost\n", JOBS, restarts);
    zp_watch_destroy (&watch);
    zp_ctx_destroy (&ctx);
    return ok? EXIT_SUCCESS: EXIT_FAILURE;
}
