/*  =========================================================================
    service - a request/reply service between workers

    The worker "calc" serves requests in its mailbox ("add A B" answers the
    sum) with zp_worker_recv and zp_worker_reply, until the context stops
    it. Two client workers call it 100 times each with zp_worker_call; the
    parent calls it too, with zp_proc_call. A call to a worker that has
    died fails with ESRCH at once, never after the whole timeout.

        service: main asked calc "add 20 22": 42
        service: client-1 made 100 calls, every answer right
        service: client-2 made 100 calls, every answer right
        service: calc killed; a call now fails: no such live worker
    =========================================================================
*/

#include <zproc/zproc.h>

#define CALLS   100

//  The service: answers each request, drops plain messages
static void
s_calc (zp_worker_t *self, void *props)
{
    while (true) {
        //  NULL with EINTR when the context stops us ($TERM) or on Ctrl-C
        zmsg_t *request = zp_worker_recv (self, -1);
        if (!request)
            break;
        char *verb = zmsg_popstr (request);
        char *first = zmsg_popstr (request);
        char *second = zmsg_popstr (request);
        zmsg_t *reply = zmsg_new ();
        if (verb && streq (verb, "add") && first && second)
            zmsg_addstrf (reply, "%lld", atoll (first) + atoll (second));
        else
            zmsg_addstr (reply, "error: unknown request");
        //  EINVAL when the message was a plain one, not a request: dropped
        if (zp_worker_reply (self, &reply) < 0)
            zmsg_destroy (&reply);
        zstr_free (&verb);
        zstr_free (&first);
        zstr_free (&second);
        zmsg_destroy (&request);
    }
}

//  Ask calc "add A B"; the answer as a number, or -1 on failure
static long long
s_add (zp_worker_t *self, long long first, long long second)
{
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, "add");
    zmsg_addstrf (request, "%lld", first);
    zmsg_addstrf (request, "%lld", second);
    zmsg_t *reply = zp_worker_call (self, "calc", &request, 5000);
    zmsg_destroy (&request);        //  Still ours when the call failed
    char *answer = reply? zmsg_popstr (reply): NULL;
    long long sum = answer? atoll (answer): -1;
    zstr_free (&answer);
    zmsg_destroy (&reply);
    return sum;
}

//  A client: CALLS calls, each answer checked; the count of right ones in
//  the state under NAME/right
static void
s_client (zp_worker_t *self, void *props)
{
    long long right = 0;
    for (long long index = 0; index < CALLS; index++)
        if (s_add (self, index, index * 10) == index * 11)
            right++;
    char *key = zsys_sprintf ("%s/right", zp_worker_name (self));
    zp_state_set_int (zp_worker_state (self), key, right);
    zstr_free (&key);
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "service: zp_ctx_new: %s\n", zp_strerror (errno));
        return 1;
    }
    int rc = 1;
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *calc = zp_ctx_spawn (ctx, "calc", s_calc, NULL);
    zp_proc_t *clients [2] = {
        zp_ctx_spawn (ctx, "client-1", s_client, NULL),
        zp_ctx_spawn (ctx, "client-2", s_client, NULL)
    };
    if (!calc || !clients [0] || !clients [1])
        goto done;

    //  The parent calls the service too
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, "add");
    zmsg_addstr (request, "20");
    zmsg_addstr (request, "22");
    zmsg_t *reply = zp_proc_call (calc, &request, 5000);
    zmsg_destroy (&request);
    char *answer = reply? zmsg_popstr (reply): NULL;
    printf ("service: main asked calc \"add 20 22\": %s\n", answer? answer: zp_strerror (errno));
    zstr_free (&answer);
    zmsg_destroy (&reply);

    for (size_t index = 0; index < 2; index++) {
        int64_t right = 0;
        char *key = zsys_sprintf ("%s/right", zp_proc_name (clients [index]));
        if (zp_proc_wait (clients [index], 10000) == 0
        &&  zp_state_get_int (state, key, &right) == 0)
            printf ("service: %s made %d calls, %s\n", zp_proc_name (clients [index]), CALLS,
                    right == CALLS? "every answer right": "some answers wrong");
        zstr_free (&key);
    }

    //  A dead service: the call fails at once with ESRCH
    zp_proc_kill (calc, SIGKILL);
    zp_proc_wait (calc, 10000);
    request = zmsg_new ();
    zmsg_addstr (request, "add");
    reply = zp_proc_call (calc, &request, 5000);
    if (!reply && errno == ESRCH) {
        printf ("service: calc killed; a call now fails: %s\n", zp_strerror (ESRCH));
        rc = 0;
    }
    zmsg_destroy (&request);
    zmsg_destroy (&reply);
done:
    zp_ctx_destroy (&ctx);
    return rc;
}
