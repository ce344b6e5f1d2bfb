/*  =========================================================================
    pipeline - ventilator, workers and sink, talking through mailboxes

    Shows the mailboxes: every worker has one, addressed by its name, and
    the parent's own is "main". The parent (the ventilator) deals 1,000
    tasks, the numbers 0 to 999, round-robin to four workers; each worker
    squares its numbers and sends the results to the sink; the sink adds
    them up and sends the total to "main", which checks it against the
    closed formula n (n + 1) (2n + 1) / 6:

        pipeline: 4 workers, 1000 tasks, sum 332833500 (expected 332833500)

    A mailbox keeps each sender's order, so a worker's "END" reaches the
    sink after every result of that worker: once the sink has an END from
    every worker, it has every result.
    =========================================================================
*/

#include <zproc/zproc.h>

#define WORKERS     4
#define TASKS       1000

//  Square every number in the mailbox and pass it on to the sink, until END
static void
s_worker (zp_worker_t *self, void *props)
{
    bool done = false;
    while (!done) {
        zmsg_t *msg = zp_worker_recv (self, -1);
        if (!msg)
            return;             //  $TERM: the context is shutting down
        char *task = zmsg_popstr (msg);
        zmsg_destroy (&msg);
        done = task && streq (task, "END");
        msg = zmsg_new ();
        if (done)
            zmsg_addstr (msg, "END");
        else {
            int64_t number = task? atoll (task): 0;
            zmsg_addstrf (msg, "%" PRId64, number * number);
        }
        zstr_free (&task);
        if (zp_worker_send (self, "sink", &msg) < 0) {
            fprintf (stderr, "pipeline: %s cannot send to the sink: %s\n",
                     zp_worker_name (self), strerror (errno));
            zmsg_destroy (&msg);
            return;
        }
    }
}

//  Add up the results until every worker has said END, then report to main
static void
s_sink (zp_worker_t *self, void *props)
{
    int64_t sum = 0;
    int ends = 0;
    while (ends < WORKERS) {
        zmsg_t *msg = zp_worker_recv (self, -1);
        if (!msg)
            return;             //  $TERM: the context is shutting down
        char *result = zmsg_popstr (msg);
        zmsg_destroy (&msg);
        if (result && streq (result, "END"))
            ends++;
        else
        if (result)
            sum += atoll (result);
        zstr_free (&result);
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addstrf (msg, "%" PRId64, sum);
    if (zp_worker_send (self, "main", &msg) < 0) {
        fprintf (stderr, "pipeline: the sink cannot send to main: %s\n", strerror (errno));
        zmsg_destroy (&msg);
    }
}

//  Send one string to a worker's mailbox; 0 or -1, with a message on stderr
static int
s_send (zp_proc_t *worker, const char *text)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, text);
    if (zp_proc_send (worker, &msg) == 0)
        return 0;
    fprintf (stderr, "pipeline: cannot send to %s: %s\n",
             zp_proc_name (worker), strerror (errno));
    zmsg_destroy (&msg);
    return -1;
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "pipeline: cannot create a context: %s\n", strerror (errno));
        return EXIT_FAILURE;
    }
    //  The sink first: a worker's first result may come at once
    zp_proc_t *workers [WORKERS];
    bool ok = zp_ctx_spawn (ctx, "sink", s_sink, NULL) != NULL;
    for (int index = 0; ok && index < WORKERS; index++) {
        char name [32];
        snprintf (name, sizeof name, "worker-%d", index + 1);
        workers [index] = zp_ctx_spawn (ctx, name, s_worker, NULL);
        ok = workers [index] != NULL;
    }
    if (!ok)
        fprintf (stderr, "pipeline: cannot start a worker: %s\n", strerror (errno));

    //  Deal the tasks round-robin, then one END to each worker
    for (int task = 0; ok && task < TASKS; task++) {
        char text [32];
        snprintf (text, sizeof text, "%d", task);
        ok = s_send (workers [task % WORKERS], text) == 0;
    }
    for (int index = 0; ok && index < WORKERS; index++)
        ok = s_send (workers [index], "END") == 0;

    //  The total comes into our own mailbox, from the sink; the squares of
    //  0 to n add up to n (n + 1) (2n + 1) / 6
    int64_t n = TASKS - 1;
    int64_t expected = n * (n + 1) * (2 * n + 1) / 6;
    if (ok) {
        zmsg_t *msg = zp_worker_recv (zp_ctx_main (ctx), 5000);
        char *total = msg? zmsg_popstr (msg): NULL;
        if (total) {
            int64_t sum = atoll (total);
            printf ("pipeline: %d workers, %d tasks, sum %" PRId64 " (expected %" PRId64 ")\n",
                    WORKERS, TASKS, sum, expected);
            ok = sum == expected;
            if (!ok)
                fprintf (stderr, "pipeline: the sum is wrong\n");
        }
        else {
            fprintf (stderr, "pipeline: no total from the sink: %s\n", strerror (errno));
            ok = false;
        }
        zstr_free (&total);
        zmsg_destroy (&msg);
    }
    int rc = ok? zp_ctx_wait_all (ctx, 5000): 0;
    if (rc < 0)
        fprintf (stderr, "pipeline: the workers did not finish: %s\n", strerror (errno));
    else
    if (rc > 0)
        fprintf (stderr, "pipeline: a worker failed with status %d\n", rc);
    ok = ok && rc == 0;
    zp_ctx_destroy (&ctx);
    return ok? EXIT_SUCCESS: EXIT_FAILURE;
}
