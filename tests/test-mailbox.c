/*  =========================================================================
    test-mailbox.c - mailboxes: addressing by name, order, bounds, calls
    =========================================================================
*/

#include "harness.h"
#include <signal.h>

static zmsg_t *
s_msg (const char *text)
{
    zmsg_t *msg = zmsg_new ();
    ASSERT_NOT_NULL (msg);
    ASSERT_EQ (zmsg_addstr (msg, text), 0);
    return msg;
}

//  Receive one message and check its text and sender
static void
s_expect (zp_worker_t *self, const char *text, const char *sender)
{
    zmsg_t *msg = zp_worker_recv (self, test_ms (5000));
    ASSERT_NOT_NULL (msg);
    char *body = zmsg_popstr (msg);
    ASSERT_STR_EQ (body, text);
    ASSERT_STR_EQ (zp_worker_sender (self), sender);
    zstr_free (&body);
    zmsg_destroy (&msg);
}

static void
s_worker_idle (zp_worker_t *self, void *props)
{
    zmsg_t *msg = zp_worker_recv (self, -1);
    zmsg_destroy (&msg);
}

//  Sends 500 numbered messages to "main"
static void
s_worker_counter (zp_worker_t *self, void *props)
{
    for (int index = 0; index < 500; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstrf (msg, "%d", index);
        ASSERT_EQ (zp_worker_send (self, "main", &msg), 0);
    }
    s_worker_idle (self, props);
}

TEST_IMPL (mailbox_main_order)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_worker_t *main = zp_ctx_main (ctx);
    ASSERT_NOT_NULL (main);
    ASSERT_STR_EQ (zp_worker_name (main), "main");
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "a", s_worker_counter, NULL));
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "b", s_worker_counter, NULL));
    //  Each sender's messages come in the order they were sent
    int next [2] = { 0, 0 };
    for (int count = 0; count < 1000; count++) {
        zmsg_t *msg = zp_worker_recv (main, test_ms (5000));
        ASSERT_NOT_NULL (msg);
        int from = streq (zp_worker_sender (main), "a")? 0: 1;
        char *body = zmsg_popstr (msg);
        ASSERT_EQ (atoi (body), next [from]);
        next [from]++;
        zstr_free (&body);
        zmsg_destroy (&msg);
    }
    ASSERT_NULL_ERRNO (zp_worker_recv (main, 0), ETIMEDOUT);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (mailbox_unknown_and_exited)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_worker_t *main = zp_ctx_main (ctx);
    zmsg_t *msg = s_msg ("hello");
    //  Never registered: ENOENT at once, and the message is still ours
    int64_t start = test_now_ms ();
    ASSERT_FAIL_ERRNO (zp_worker_send (main, "nobody", &msg), ENOENT);
    ASSERT_LT (test_now_ms () - start, test_ms (1000));
    ASSERT_NOT_NULL (msg);
    ASSERT_FAIL_ERRNO (zp_worker_send (main, "bad name!", &msg), EINVAL);

    //  Exited, normally or by a crash: ESRCH, not a silent loss
    zp_proc_t *proc = zp_ctx_spawn (ctx, "short", s_worker_idle, NULL);
    ASSERT_NOT_NULL (proc);
    zmsg_t *go = s_msg ("go");
    ASSERT_EQ (zp_proc_send (proc, &go), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_FAIL_ERRNO (zp_worker_send (main, "short", &msg), ESRCH);
    ASSERT_FAIL_ERRNO (zp_proc_send (proc, &msg), ESRCH);
    proc = zp_ctx_spawn (ctx, "victim", s_worker_idle, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_kill (proc, SIGKILL), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 128 + SIGKILL);
    ASSERT_FAIL_ERRNO (zp_worker_send (main, "victim", &msg), ESRCH);
    zmsg_destroy (&msg);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Forwards its first message to the state
static void
s_worker_first_to_state (zp_worker_t *self, void *props)
{
    zmsg_t *msg = zp_worker_recv (self, -1);
    ASSERT_NOT_NULL (msg);
    char *body = zmsg_popstr (msg);
    ASSERT_EQ (zp_state_set_str (zp_worker_state (self), "first", body), 0);
    zstr_free (&body);
    zmsg_destroy (&msg);
}

TEST_IMPL (mailbox_registered_waits)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_ctx_process_factory (ctx, NULL, s_worker_first_to_state, NULL), 0);
    //  Registered, not started: the message waits for it
    ASSERT_EQ (zp_state_get_when_equal_str (state, "$proc/worker-1/status", "registered",
                                            test_ms (5000)), 0);
    zmsg_t *msg = s_msg ("early");
    ASSERT_EQ (zp_worker_send (zp_ctx_main (ctx), "worker-1", &msg), 0);
    ASSERT_NULL (msg);
    ASSERT_EQ (zp_ctx_start_all (ctx), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 0);
    char *first = zp_state_get_str (state, "first");
    ASSERT_STR_EQ (first, "early");
    zstr_free (&first);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Never reads its mailbox; leaves when the context shuts down
static void
s_worker_deaf (zp_worker_t *self, void *props)
{
    zp_state_get_when_available (zp_worker_state (self), "never", -1);
}

TEST_IMPL (mailbox_bounded)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_worker_t *main = zp_ctx_main (ctx);
    //  A worker that never reads its mailbox
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "deaf", s_worker_deaf, NULL));
    zp_state_set_timeout (zp_worker_state (main), 100);
    zmsg_t *msg = NULL;
    int sent = 0;
    while (sent < 100 * ZP_MAILBOX_BOUND) {
        msg = s_msg ("x");
        if (zp_worker_send (main, "deaf", &msg) < 0)
            break;
        sent++;
    }
    //  Full: EAGAIN after the timeout, the message still ours; the bound
    //  holds (the kernel's socket buffers add a little)
    ASSERT_ERRNO_EQ (EAGAIN);
    ASSERT_NOT_NULL (msg);
    zmsg_destroy (&msg);
    ASSERT_GE (sent, ZP_MAILBOX_BOUND);
    ASSERT_LT (sent, 10 * ZP_MAILBOX_BOUND);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Answers every request with its text in brackets; "crash" crashes it,
//  "silence" gets no answer
static void
s_worker_echo (zp_worker_t *self, void *props)
{
    while (true) {
        zmsg_t *msg = zp_worker_recv (self, -1);
        if (!msg)
            return;
        char *body = zmsg_popstr (msg);
        zmsg_destroy (&msg);
        if (streq (body, "crash")) {
            signal (SIGSEGV, SIG_DFL);
            raise (SIGSEGV);
        }
        if (!streq (body, "silence")) {
            zmsg_t *reply = zmsg_new ();
            zmsg_addstrf (reply, "[%s]", body);
            ASSERT_EQ (zp_worker_reply (self, &reply), 0);
            //  One reply per request
            reply = s_msg ("again");
            ASSERT_FAIL_ERRNO (zp_worker_reply (self, &reply), EINVAL);
            zmsg_destroy (&reply);
        }
        zstr_free (&body);
    }
}

//  Calls "echo" and stores the answer in the state
static void
s_worker_caller (zp_worker_t *self, void *props)
{
    zmsg_t *msg = s_msg ("from a worker");
    zmsg_t *reply = zp_worker_call (self, "echo", &msg, -1);
    ASSERT_NOT_NULL (reply);
    char *body = zmsg_popstr (reply);
    ASSERT_EQ (zp_state_set_str (zp_worker_state (self), "answer", body), 0);
    zstr_free (&body);
    zmsg_destroy (&reply);
}

TEST_IMPL (mailbox_call)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_proc_t *echo = zp_ctx_spawn (ctx, "echo", s_worker_echo, NULL);
    ASSERT_NOT_NULL (echo);
    //  From the parent
    for (int round = 0; round < 3; round++) {
        zmsg_t *msg = s_msg ("ping");
        zmsg_t *reply = zp_proc_call (echo, &msg, test_ms (5000));
        ASSERT_NOT_NULL (reply);
        ASSERT_NULL (msg);
        char *body = zmsg_popstr (reply);
        ASSERT_STR_EQ (body, "[ping]");
        zstr_free (&body);
        zmsg_destroy (&reply);
    }
    //  From another worker
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "caller", s_worker_caller, NULL));
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "answer", "[from a worker]",
                                            test_ms (5000)), 0);
    //  No request to answer
    zmsg_t *stray = s_msg ("stray");
    ASSERT_FAIL_ERRNO (zp_worker_reply (zp_ctx_main (ctx), &stray), EINVAL);
    zmsg_destroy (&stray);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (mailbox_call_timeout_and_death)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_proc_t *echo = zp_ctx_spawn (ctx, "echo", s_worker_echo, NULL);
    ASSERT_NOT_NULL (echo);
    //  No answer: ETIMEDOUT, in time
    zmsg_t *msg = s_msg ("silence");
    int64_t start = test_now_ms ();
    ASSERT_NULL_ERRNO (zp_proc_call (echo, &msg, 200), ETIMEDOUT);
    ASSERT_GE (test_now_ms () - start, 150);
    ASSERT_LT (test_now_ms () - start, test_ms (3000));
    //  The callee dies: ESRCH as soon as it does, long before the timeout
    msg = s_msg ("crash");
    start = test_now_ms ();
    ASSERT_NULL_ERRNO (zp_proc_call (echo, &msg, test_ms (30000)), ESRCH);
    ASSERT_LT (test_now_ms () - start, test_ms (3000));
    ASSERT_EQ (zp_proc_wait (echo, test_ms (5000)), 128 + SIGSEGV);
    //  And it stays an error
    msg = s_msg ("ping");
    ASSERT_NULL_ERRNO (zp_worker_call (zp_ctx_main (ctx), "echo", &msg, 1000), ESRCH);
    zmsg_destroy (&msg);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Sends three messages to main, then answers one request
static void
s_worker_chatty (zp_worker_t *self, void *props)
{
    zmsg_t *request = zp_worker_recv (self, -1);
    ASSERT_NOT_NULL (request);
    zmsg_destroy (&request);
    for (int index = 0; index < 3; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstrf (msg, "note %d", index);
        ASSERT_EQ (zp_worker_send (self, "main", &msg), 0);
    }
    zmsg_t *reply = s_msg ("done");
    ASSERT_EQ (zp_worker_reply (self, &reply), 0);
    s_worker_idle (self, props);
}

TEST_IMPL (mailbox_call_keeps_mailbox)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_proc_t *chatty = zp_ctx_spawn (ctx, "chatty", s_worker_chatty, NULL);
    ASSERT_NOT_NULL (chatty);
    zmsg_t *msg = s_msg ("go");
    zmsg_t *reply = zp_proc_call (chatty, &msg, test_ms (5000));
    ASSERT_NOT_NULL (reply);
    zmsg_destroy (&reply);
    //  What came meanwhile is still in the mailbox, in order
    zp_worker_t *main = zp_ctx_main (ctx);
    s_expect (main, "note 0", "chatty");
    s_expect (main, "note 1", "chatty");
    s_expect (main, "note 2", "chatty");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Polls its mailbox, a watch and a socket of its own with one zpoller
static void
s_worker_poller (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    zp_watch_t *watch = zp_watch_new (state, "poll/");
    ASSERT_NOT_NULL (watch);
    zsock_t *own = zsock_new_pair ("@inproc://own");
    zsock_t *peer = zsock_new_pair (">inproc://own");
    ASSERT_NOT_NULL (own);
    ASSERT_NOT_NULL (peer);
    zstr_send (peer, "own");
    zpoller_t *poller = zpoller_new (zp_worker_mailbox (self), zp_watch_sock (watch), own,
                                     NULL);
    ASSERT_NOT_NULL (poller);
    ASSERT_EQ (zp_state_set_str (state, "ready", "yes"), 0);
    int seen = 0;
    while (seen != 7) {
        void *which = zpoller_wait (poller, 5000);
        ASSERT_NOT_NULL (which);
        if (which == zp_worker_mailbox (self)) {
            zmsg_t *msg = zp_worker_recv (self, 0);
            ASSERT_NOT_NULL (msg);
            zmsg_destroy (&msg);
            seen |= 1;
        }
        else
        if (which == zp_watch_sock (watch)) {
            char *key, *value;
            ASSERT_EQ (zp_watch_next (watch, &key, &value, 0), 0);
            ASSERT_STR_EQ (key, "poll/x");
            zstr_free (&key);
            zstr_free (&value);
            seen |= 2;
        }
        else {
            char *text = zstr_recv (own);
            ASSERT_STR_EQ (text, "own");
            zstr_free (&text);
            seen |= 4;
        }
    }
    ASSERT_EQ (zp_state_set_str (state, "polled", "all"), 0);
    zpoller_destroy (&poller);
    zsock_destroy (&peer);
    zsock_destroy (&own);
    zp_watch_destroy (&watch);
}

TEST_IMPL (mailbox_poller)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "poller", s_worker_poller, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_state_get_when_available (state, "ready", test_ms (5000)), 0);
    zmsg_t *msg = s_msg ("mail");
    ASSERT_EQ (zp_proc_send (proc, &msg), 0);
    ASSERT_EQ (zp_state_set_str (state, "poll/x", "1"), 0);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "polled", "all", test_ms (5000)), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Sends a burst bigger than the mailbox's bound to "main", then a call
//  that "main" answers once it has read everything before it: only then
//  does it leave
static void
s_worker_burst (zp_worker_t *self, void *props)
{
    for (int index = 0; index < 1800; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstrf (msg, "%d", index);
        ASSERT_EQ (zp_worker_send (self, "main", &msg), 0);
    }
    if (props) {
        zmsg_t *done = zmsg_new ();
        zmsg_addstr (done, "done");
        zmsg_t *reply = zp_worker_call (self, "main", &done, -1);
        ASSERT_NOT_NULL (reply);
        zmsg_destroy (&reply);
    }
}

TEST_IMPL (mailbox_burst_then_call)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_worker_t *main = zp_ctx_main (ctx);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "burst", s_worker_burst, (void *) 1);
    ASSERT_NOT_NULL (proc);
    //  Read nothing for a while: the mailbox and the sender's queue fill up
    ASSERT_FAIL_ERRNO (zp_state_get_when_available (zp_ctx_state (ctx), "never", 1500),
                       ETIMEDOUT);
    //  Every message arrives, in order, then the call, answered last
    for (int index = 0; index < 1800; index++) {
        zmsg_t *msg = zp_worker_recv (main, test_ms (5000));
        ASSERT_NOT_NULL (msg);
        char *body = zmsg_popstr (msg);
        ASSERT_EQ (atoi (body), index);
        zstr_free (&body);
        zmsg_destroy (&msg);
    }
    zmsg_t *done = zp_worker_recv (main, test_ms (5000));
    ASSERT_NOT_NULL (done);
    ASSERT_STR_EQ (zp_worker_sender (main), "burst");
    ASSERT_EQ (zp_worker_reply (main, &done), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (mailbox_destroy_with_mail_pending)
{
    //  Workers with undelivered mail for main still stop promptly
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    for (int index = 0; index < 3; index++)
        ASSERT_NOT_NULL (zp_ctx_spawn (ctx, NULL, s_worker_burst, NULL));
    ASSERT_FAIL_ERRNO (zp_state_get_when_available (zp_ctx_state (ctx), "never", 300),
                       ETIMEDOUT);
    int64_t start = test_now_ms ();
    zp_ctx_destroy (&ctx);
    ASSERT_LT (test_now_ms () - start, test_ms (900));
    ASSERT (test_no_children ());
    return 0;
}
