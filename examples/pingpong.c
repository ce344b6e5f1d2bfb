/*  =========================================================================
    pingpong - two workers bounce 100,000 messages between their mailboxes

    Shows worker-to-worker messaging by name, and what it carries: "ping"
    sends messages to "pong", which answers each one back to "ping"; ping
    keeps 100 of them in flight, so the rally measures the mailboxes'
    throughput rather than one round trip at a time. The parent starts the
    rally through ping's mailbox, ping sends the number of messages it
    counted (sent and answered) to "main", and the parent prints the rate:

        pingpong: 100000 messages in 1.234 s, 81037 msg/s
    =========================================================================
*/

#include <zproc/zproc.h>

#define MESSAGES    100000     //  Both ways together
#define WINDOW      100        //  Messages in flight, well within the mailbox bound

//  Send one string to the worker named to; false, with a message on
//  stderr, when it cannot
static bool
s_send (zp_worker_t *self, const char *to, const char *text)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, text);
    if (zp_worker_send (self, to, &msg) == 0)
        return true;
    fprintf (stderr, "pingpong: %s cannot send to %s: %s\n",
             zp_worker_name (self), to, strerror (errno));
    zmsg_destroy (&msg);
    return false;
}

//  Answer every message with "pong" until "END"
static void
s_pong (zp_worker_t *self, void *props)
{
    while (true) {
        zmsg_t *msg = zp_worker_recv (self, -1);
        if (!msg)
            return;             //  $TERM: the context is shutting down
        char *text = zmsg_popstr (msg);
        zmsg_destroy (&msg);
        bool end = !text || streq (text, "END");
        zstr_free (&text);
        if (end || !s_send (self, "ping", "pong"))
            return;
    }
}

//  Wait for the go from main, play the rally, and tell main how many
//  messages went to and fro. Ping keeps WINDOW balls in the air, so the
//  rally measures what the mailboxes carry rather than one round trip at a
//  time; with a window within the mailbox bound, neither side can block
//  the other.
static void
s_ping (zp_worker_t *self, void *props)
{
    zmsg_t *msg = zp_worker_recv (self, -1);
    if (!msg)
        return;             //  $TERM: the context is shutting down
    zmsg_destroy (&msg);
    int sent = 0;
    int received = 0;
    while (received < MESSAGES / 2) {
        if (sent < MESSAGES / 2 && sent - received < WINDOW) {
            if (!s_send (self, "pong", "ping"))
                break;
            sent++;
            continue;
        }
        msg = zp_worker_recv (self, 5000);
        if (!msg) {
            fprintf (stderr, "pingpong: no answer from pong: %s\n", strerror (errno));
            break;
        }
        zmsg_destroy (&msg);
        received++;
    }
    s_send (self, "pong", "END");
    char count [32];
    snprintf (count, sizeof count, "%d", sent + received);
    s_send (self, "main", count);
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "pingpong: cannot create a context: %s\n", strerror (errno));
        return EXIT_FAILURE;
    }
    bool ok = zp_ctx_spawn (ctx, "pong", s_pong, NULL)
           && zp_ctx_spawn (ctx, "ping", s_ping, NULL);
    if (!ok)
        fprintf (stderr, "pingpong: cannot start a worker: %s\n", strerror (errno));

    //  Both are connected and ready: the clock runs from the go to the
    //  count. Ping always sends the count, as it gives up on a silent pong
    //  after 5 s: the long timeout is for slow machines, valgrind and such.
    zp_worker_t *parent = zp_ctx_main (ctx);
    int64_t start = zclock_usecs ();
    ok = ok && s_send (parent, "ping", "go");
    zmsg_t *msg = ok? zp_worker_recv (parent, 60000): NULL;
    double seconds = (zclock_usecs () - start) / 1e6;
    char *text = msg? zmsg_popstr (msg): NULL;
    int count = text? atoi (text): 0;
    if (ok && !msg)
        fprintf (stderr, "pingpong: no count from ping: %s\n", strerror (errno));
    else
    if (ok && count != MESSAGES)
        fprintf (stderr, "pingpong: %d of %d messages went through\n", count, MESSAGES);
    else
    if (ok)
        printf ("pingpong: %d messages in %.3f s, %.0f msg/s\n",
                count, seconds, count / seconds);
    ok = ok && count == MESSAGES;
    zstr_free (&text);
    zmsg_destroy (&msg);
    int rc = ok? zp_ctx_wait_all (ctx, 5000): 0;
    if (rc < 0)
        fprintf (stderr, "pingpong: the workers did not finish: %s\n", strerror (errno));
    else
    if (rc > 0)
        fprintf (stderr, "pingpong: a worker failed with status %d\n", rc);
    ok = ok && rc == 0;
    zp_ctx_destroy (&ctx);
    return ok? EXIT_SUCCESS: EXIT_FAILURE;
}
