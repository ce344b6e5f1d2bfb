/*  =========================================================================
    test-ctx - the context: endpoints, socket directory, bind, CURVE
    =========================================================================
*/

#include "harness.h"
#include <sys/stat.h>

//  Sets "hello" = its name
static void
s_worker_hello (zp_worker_t *worker, void *props)
{
    ASSERT_EQ (zp_state_set_str (zp_worker_state (worker), "hello",
                                 zp_worker_name (worker)), 0);
}


TEST_IMPL (ctx_new_destroy)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    ASSERT_NOT_NULL (endpoint);
    ASSERT_EQ (strncmp (endpoint, "ipc://", 6), 0);
    //  The parent's handle is owned by the context: always the same one
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_NOT_NULL (state);
    ASSERT (zp_ctx_state (ctx) == state);
    ASSERT_EQ (zp_ctx_running (ctx), 0);
    ASSERT_EQ (zp_state_set_str (state, "k", "v"), 0);
    zp_ctx_destroy (&ctx);
    ASSERT_NULL (ctx);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (ctx_two_contexts)
{
    zp_ctx_t *one = zp_ctx_new ();
    ASSERT_NOT_NULL (one);
    zp_ctx_t *two = zp_ctx_new ();
    ASSERT_NOT_NULL (two);
    ASSERT (strcmp (zp_ctx_endpoint (one), zp_ctx_endpoint (two)) != 0);

    //  Separate states
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (one), "k", "one"), 0);
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (two), "k", "two"), 0);
    ASSERT_STATE_STR (zp_ctx_state (one), "k", "one");
    ASSERT_STATE_STR (zp_ctx_state (two), "k", "two");

    //  Workers talk to their own context's store
    zp_proc_t *proc = zp_ctx_spawn (two, "w2", s_worker_hello, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_STATE_STR (zp_ctx_state (two), "hello", "w2");
    ASSERT_NULL_ERRNO (zp_state_get_str (zp_ctx_state (one), "hello"), ENOENT);
    //  Names are per context
    proc = zp_ctx_spawn (one, "w2", s_worker_hello, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_STATE_STR (zp_ctx_state (one), "hello", "w2");

    //  Destroying one leaves the other working
    zp_ctx_destroy (&one);
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (two), "k", "still"), 0);
    ASSERT_STATE_STR (zp_ctx_state (two), "k", "still");
    zp_ctx_destroy (&two);
    return 0;
}


TEST_IMPL (ctx_socket_dir)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    char *dir = test_endpoint_dir (zp_ctx_endpoint (ctx));
    ASSERT_NOT_NULL (dir);
    struct stat st;
    ASSERT_EQ (stat (dir, &st), 0);
    ASSERT (S_ISDIR (st.st_mode));
    ASSERT_EQ (st.st_mode & 0777, 0700);
    ASSERT_EQ (st.st_uid, getuid ());
    //  Under $TMPDIR, or /tmp
    const char *tmpdir = getenv ("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    ASSERT_EQ (strncmp (dir, tmpdir, strlen (tmpdir)), 0);

    //  Workers (and their mailboxes) come and go
    zp_proc_t *proc = zp_ctx_spawn (ctx, "w", s_worker_hello, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    zp_ctx_destroy (&ctx);
    //  The directory is gone, with everything in it
    ASSERT (!test_path_exists (dir));
    free (dir);
    return 0;
}


TEST_IMPL (ctx_tmpdir)
{
    //  $TMPDIR decides where the socket directory goes
    char base [] = "/tmp/zproc-test-tmpdir-XXXXXX";
    ASSERT_NOT_NULL (mkdtemp (base));
    ASSERT_EQ (setenv ("TMPDIR", base, 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    char *dir = test_endpoint_dir (zp_ctx_endpoint (ctx));
    ASSERT_NOT_NULL (dir);
    ASSERT_EQ (strncmp (dir, base, strlen (base)), 0);
    ASSERT_EQ (dir [strlen (base)], '/');
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "k", "v"), 0);
    zp_ctx_destroy (&ctx);
    ASSERT (!test_path_exists (dir));
    free (dir);
    //  Nothing else was left in $TMPDIR
    ASSERT_EQ (rmdir (base), 0);
    return 0;
}


TEST_IMPL (ctx_bind_tcp)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_NULL_ERRNO (zp_ctx_bind (ctx, "no-such-transport"), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_bind (ctx, NULL), EINVAL);

    const char *endpoint = zp_ctx_bind (ctx, "tcp://127.0.0.1:*");
    ASSERT_NOT_NULL (endpoint);
    ASSERT_EQ (strncmp (endpoint, "tcp://127.0.0.1:", 16), 0);
    //  The port actually bound, not the wildcard
    ASSERT_GT (atoi (endpoint + 16), 0);
    ASSERT_NULL (strchr (endpoint, '*'));

    //  One store, two endpoints
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "k", "via-ipc"), 0);
    zp_state_t *remote = zp_state_connect (endpoint, zp_ctx_public_key (ctx));
    ASSERT_NOT_NULL (remote);
    ASSERT_STATE_STR (remote, "k", "via-ipc");
    ASSERT_EQ (zp_state_set_str (remote, "r", "via-tcp"), 0);
    ASSERT_STATE_STR (zp_ctx_state (ctx), "r", "via-tcp");
    int64_t result = 0;
    ASSERT_EQ (zp_state_incr (remote, "n", 2, &result), 0);
    ASSERT_EQ (result, 2);

    //  The same endpoint twice is in use
    char *copy = strdup (endpoint);
    errno = 0;
    ASSERT_NULL (zp_ctx_bind (ctx, copy));
    ASSERT_NE (errno, 0);
    free (copy);

    zp_state_destroy (&remote);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (ctx_curve_off)
{
    unsetenv ("ZPROC_CURVE");
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    errno = EBUSY;
    ASSERT_NULL (zp_ctx_public_key (ctx));
    ASSERT_ERRNO_EQ (0);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (ctx_curve_on)
{
    ASSERT_EQ (setenv ("ZPROC_CURVE", "1", 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    const char *key = zp_ctx_public_key (ctx);
    ASSERT_NOT_NULL (key);
    ASSERT_EQ (strlen (key), 40);
    //  Z85 decodes it
    uint8_t raw [32];
    ASSERT_NOT_NULL (zmq_z85_decode (raw, key));

    //  The parent and its workers work as usual
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_set_str (state, "k", "v"), 0);
    ASSERT_STATE_STR (state, "k", "v");
    zp_proc_t *proc = zp_ctx_spawn (ctx, "secure", s_worker_hello, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_STATE_STR (state, "hello", "secure");

    //  Each context has its own keypair
    zp_ctx_t *other = zp_ctx_new ();
    ASSERT_NOT_NULL (other);
    ASSERT_NOT_NULL (zp_ctx_public_key (other));
    ASSERT (strcmp (zp_ctx_public_key (other), key) != 0);
    zp_ctx_destroy (&other);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (ctx_curve_refuses_plain)
{
    ASSERT_EQ (setenv ("ZPROC_CURVE", "1", 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_NOT_NULL (zp_ctx_public_key (ctx));
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "secret", "s"), 0);

    //  A client without CURVE is refused: EACCES, or ENOTCONN once the
    //  default timeout (5 s) runs out; never a hang, never the data
    int64_t start = test_now_ms ();
    errno = 0;
    zp_state_t *intruder = zp_state_connect (zp_ctx_endpoint (ctx), NULL);
    int err = errno;
    if (intruder) {
        //  Connected lazily: the first call must fail
        zp_state_set_timeout (intruder, 1000);
        errno = 0;
        char *value = zp_state_get_str (intruder, "secret");
        err = errno;
        ASSERT_NULL (value);
        zp_state_destroy (&intruder);
    }
    ASSERT (err == EACCES || err == ENOTCONN);
    ASSERT_LE (test_now_ms () - start, test_ms (8000));
    //  The store still serves its own
    ASSERT_STATE_STR (zp_ctx_state (ctx), "secret", "s");
    zp_ctx_destroy (&ctx);
    return 0;
}
