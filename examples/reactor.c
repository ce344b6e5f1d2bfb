/*  =========================================================================
    reactor - a worker that reacts to every change under a prefix, inside
    a zloop, beside its own sockets

    The worker "reactor" runs one zloop over three things: the socket of a
    watch on "orders/" (zp_watch_sock: every change under the prefix, in
    store order), its mailbox (zp_worker_mailbox: a "report" request, and
    $TERM when the context stops), and a timer of its own. The parent
    places ten orders, then asks for a report with zp_proc_call.

        reactor: placed 10 orders, total 550
        reactor: the report says "10 orders, in store order, total 550"
    =========================================================================
*/

#include <zproc/zproc.h>

#define ORDERS  10

typedef struct {
    zp_worker_t *worker;        //  This worker
    zp_watch_t *watch;          //  Every change under "orders/"
    int orders;                 //  Orders seen
    int64_t total;              //  Their amounts, summed
    int64_t last;               //  The last order's number
    bool in_order;              //  Did every order come after the one before?
    int ticks;                  //  Timer events (the loop does other work too)
} reactor_t;

//  The watch's socket is readable: take every change waiting
static int
s_on_change (zloop_t *loop, zsock_t *sock, void *arg)
{
    reactor_t *self = (reactor_t *) arg;
    char *key, *value;
    while (zp_watch_next (self->watch, &key, &value, 0) == 0) {
        if (value) {
            //  "orders/N" = amount
            int64_t number = atoll (key + strlen ("orders/"));
            self->in_order = self->in_order && number == self->last + 1;
            self->last = number;
            self->total += atoll (value);
            self->orders++;
            char *done = zsys_sprintf ("%d", self->orders);
            zp_state_set_str (zp_worker_state (self->worker), "reactor/seen", done);
            zstr_free (&done);
        }
        zstr_free (&key);
        zstr_free (&value);
    }
    //  ETIMEDOUT: nothing more waiting; anything else ends the loop
    return errno == ETIMEDOUT || errno == EAGAIN? 0: -1;
}

//  The mailbox is readable: a request to answer, or $TERM
static int
s_on_mail (zloop_t *loop, zsock_t *sock, void *arg)
{
    reactor_t *self = (reactor_t *) arg;
    zmsg_t *msg = zp_worker_recv (self->worker, 0);
    if (!msg)
        return errno == ETIMEDOUT? 0: -1;      //  EINTR: $TERM or Ctrl-C, stop
    char *verb = zmsg_popstr (msg);
    zmsg_destroy (&msg);
    if (verb && streq (verb, "report")) {
        zmsg_t *reply = zmsg_new ();
        zmsg_addstrf (reply, "%d orders, %s, total %" PRId64, self->orders,
                      self->in_order? "in store order": "out of order", self->total);
        if (zp_worker_reply (self->worker, &reply) < 0)
            zmsg_destroy (&reply);
    }
    zstr_free (&verb);
    return 0;
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    ((reactor_t *) arg)->ticks++;
    return 0;
}

static void
s_reactor (zp_worker_t *worker, void *props)
{
    reactor_t self = { worker, NULL, 0, 0, 0, true, 0 };
    self.watch = zp_watch_new (zp_worker_state (worker), "orders/");
    zloop_t *loop = zloop_new ();
    if (self.watch && loop) {
        zloop_reader (loop, zp_watch_sock (self.watch), s_on_change, &self);
        zloop_reader (loop, zp_worker_mailbox (worker), s_on_mail, &self);
        zloop_timer (loop, 100, 0, s_on_timer, &self);
        //  The watch exists: changes from now on are seen
        zp_state_set_str (zp_worker_state (worker), "reactor/ready", "1");
        zloop_start (loop);
    }
    zloop_destroy (&loop);
    zp_watch_destroy (&self.watch);
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "reactor: zp_ctx_new: %s\n", zp_strerror (errno));
        return 1;
    }
    int rc = 1;
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *reactor = zp_ctx_spawn (ctx, "reactor", s_reactor, NULL);
    if (!reactor || zp_state_get_when_available (state, "reactor/ready", 10000) < 0)
        goto done;
    //  Orders 1 to 10, amounts 10 to 100, and a key outside the prefix
    int64_t total = 0;
    for (int index = 1; index <= ORDERS; index++) {
        char key [32], amount [32];
        snprintf (key, sizeof key, "orders/%d", index);
        snprintf (amount, sizeof amount, "%d", index * 10);
        zp_state_set_str (state, key, amount);
        zp_state_set_str (state, "unrelated", amount);
        total += index * 10;
    }
    char expected [16];
    snprintf (expected, sizeof expected, "%d", ORDERS);
    if (zp_state_get_when_equal_str (state, "reactor/seen", expected, 10000) < 0)
        goto done;
    printf ("reactor: placed %d orders, total %" PRId64 "\n", ORDERS, total);

    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, "report");
    zmsg_t *reply = zp_proc_call (reactor, &request, 10000);
    zmsg_destroy (&request);
    char *report = reply? zmsg_popstr (reply): NULL;
    if (report) {
        printf ("reactor: the report says \"%s\"\n", report);
        rc = 0;
    }
    zstr_free (&report);
    zmsg_destroy (&reply);
done:
    if (rc)
        fprintf (stderr, "reactor: %s\n", zp_strerror (errno));
    zp_ctx_destroy (&ctx);      //  $TERM in its mailbox ends the loop
    return rc;
}
