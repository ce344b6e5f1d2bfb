/*  =========================================================================
    test-state - zp_state through the parent's handle (zp_ctx_state) and
    through handles made with zp_state_connect
    =========================================================================
*/

#include "harness.h"

//  A context and its state handle, or the test fails
#define OPEN_CTX() \
    zp_ctx_t *ctx = zp_ctx_new (); \
    ASSERT_NOT_NULL (ctx); \
    zp_state_t *state = zp_ctx_state (ctx); \
    ASSERT_NOT_NULL (state)

//  A key or value of length bytes of c, NUL-terminated; the caller frees it
static char *
s_repeat (char c, size_t length)
{
    char *text = (char *) malloc (length + 1);
    ASSERT_NOT_NULL (text);
    memset (text, c, length);
    text [length] = 0;
    return text;
}

TEST_IMPL (state_str)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "greeting", "hello"), 0);
    ASSERT_STATE_STR (state, "greeting", "hello");

    //  Every get is a fresh copy
    char *first = zp_state_get_str (state, "greeting");
    char *second = zp_state_get_str (state, "greeting");
    ASSERT_NOT_NULL (first);
    ASSERT_NOT_NULL (second);
    ASSERT (first != second);
    free (first);
    free (second);

    //  Overwrite
    ASSERT_EQ (zp_state_set_str (state, "greeting", "world, longer than before"), 0);
    ASSERT_STATE_STR (state, "greeting", "world, longer than before");
    ASSERT_EQ (zp_state_set_str (state, "greeting", "w"), 0);
    ASSERT_STATE_STR (state, "greeting", "w");

    //  An empty value is a value
    ASSERT_EQ (zp_state_set_str (state, "empty", ""), 0);
    ASSERT_STATE_STR (state, "empty", "");
    ASSERT (zp_state_exists (state, "empty"));

    //  Keys are independent; path-like keys are ordinary keys
    ASSERT_EQ (zp_state_set_str (state, "jobs/42/status", "done"), 0);
    ASSERT_STATE_STR (state, "jobs/42/status", "done");
    ASSERT_STATE_STR (state, "greeting", "w");
    ASSERT_NULL_ERRNO (zp_state_get_str (state, "jobs/42"), ENOENT);
    ASSERT_NULL_ERRNO (zp_state_get_str (state, "jobs"), ENOENT);

    zp_ctx_destroy (&ctx);
    ASSERT_NULL (ctx);
    return 0;
}


TEST_IMPL (state_int)
{
    OPEN_CTX ();
    int64_t value = 0;
    ASSERT_EQ (zp_state_set_int (state, "n", 42), 0);
    ASSERT_EQ (zp_state_get_int (state, "n", &value), 0);
    ASSERT_EQ (value, 42);
    //  Stored as decimal text
    ASSERT_STATE_STR (state, "n", "42");

    ASSERT_EQ (zp_state_set_int (state, "n", -7), 0);
    ASSERT_EQ (zp_state_get_int (state, "n", &value), 0);
    ASSERT_EQ (value, -7);
    ASSERT_STATE_STR (state, "n", "-7");

    ASSERT_EQ (zp_state_set_int (state, "max", INT64_MAX), 0);
    ASSERT_EQ (zp_state_get_int (state, "max", &value), 0);
    ASSERT (value == INT64_MAX);
    ASSERT_STATE_STR (state, "max", "9223372036854775807");
    ASSERT_EQ (zp_state_set_int (state, "min", INT64_MIN), 0);
    ASSERT_EQ (zp_state_get_int (state, "min", &value), 0);
    ASSERT (value == INT64_MIN);

    //  Text that is a decimal int64 reads as one
    ASSERT_EQ (zp_state_set_str (state, "text", "123"), 0);
    ASSERT_EQ (zp_state_get_int (state, "text", &value), 0);
    ASSERT_EQ (value, 123);
    ASSERT_EQ (zp_state_set_str (state, "text", "-0"), 0);
    ASSERT_EQ (zp_state_get_int (state, "text", &value), 0);
    ASSERT_EQ (value, 0);

    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_int_invalid)
{
    OPEN_CTX ();
    int64_t value = 1234;
    const char *bad [] = { "abc", "12abc", "1.5", "", "99999999999999999999", NULL };
    int index;
    for (index = 0; bad [index]; index++) {
        ASSERT_EQ (zp_state_set_str (state, "bad", bad [index]), 0);
        ASSERT_FAIL_ERRNO (zp_state_get_int (state, "bad", &value), EINVAL);
        ASSERT_EQ (value, 1234);
        //  The value itself is untouched
        ASSERT_STATE_STR (state, "bad", bad [index]);
    }
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_double)
{
    OPEN_CTX ();
    double value = 0;
    ASSERT_EQ (zp_state_set_double (state, "d", 1.5), 0);
    ASSERT_EQ (zp_state_get_double (state, "d", &value), 0);
    ASSERT (value == 1.5);

    ASSERT_EQ (zp_state_set_double (state, "d", -2.25), 0);
    ASSERT_EQ (zp_state_get_double (state, "d", &value), 0);
    ASSERT (value == -2.25);

    ASSERT_EQ (zp_state_set_double (state, "d", 0.0), 0);
    ASSERT_EQ (zp_state_get_double (state, "d", &value), 0);
    ASSERT (value == 0.0);

    //  Stored as decimal text: a string of a number reads as a double
    ASSERT_EQ (zp_state_set_str (state, "s", "1.5"), 0);
    ASSERT_EQ (zp_state_get_double (state, "s", &value), 0);
    ASSERT (value == 1.5);
    ASSERT_EQ (zp_state_set_str (state, "s", "42"), 0);
    ASSERT_EQ (zp_state_get_double (state, "s", &value), 0);
    ASSERT (value == 42.0);
    //  ... and a double is text that parses back
    ASSERT_EQ (zp_state_set_double (state, "d", 1.5), 0);
    char *text = zp_state_get_str (state, "d");
    ASSERT_NOT_NULL (text);
    ASSERT (strtod (text, NULL) == 1.5);
    free (text);

    //  Not a number
    value = 7.0;
    ASSERT_EQ (zp_state_set_str (state, "s", "abc"), 0);
    ASSERT_FAIL_ERRNO (zp_state_get_double (state, "s", &value), EINVAL);
    ASSERT_EQ (zp_state_set_str (state, "s", "1.5x"), 0);
    ASSERT_FAIL_ERRNO (zp_state_get_double (state, "s", &value), EINVAL);
    ASSERT (value == 7.0);

    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_bytes)
{
    OPEN_CTX ();
    const unsigned char data [] = { 'a', 0, 'b', 0, 0, 0xff, 'c', 0x80, 0 };
    ASSERT_EQ (zp_state_set_bytes (state, "bin", data, sizeof (data)), 0);
    zchunk_t *chunk = zp_state_get_bytes (state, "bin");
    ASSERT_NOT_NULL (chunk);
    ASSERT_EQ (zchunk_size (chunk), sizeof (data));
    ASSERT_EQ (memcmp (zchunk_data (chunk), data, sizeof (data)), 0);
    zchunk_destroy (&chunk);

    //  get_str cuts the value at its first NUL byte
    ASSERT_STATE_STR (state, "bin", "a");

    //  A string reads back as bytes, without a terminating NUL
    ASSERT_EQ (zp_state_set_str (state, "text", "abc"), 0);
    chunk = zp_state_get_bytes (state, "text");
    ASSERT_NOT_NULL (chunk);
    ASSERT_EQ (zchunk_size (chunk), 3);
    ASSERT_EQ (memcmp (zchunk_data (chunk), "abc", 3), 0);
    zchunk_destroy (&chunk);

    //  An empty value, data NULL
    ASSERT_EQ (zp_state_set_bytes (state, "none", NULL, 0), 0);
    ASSERT (zp_state_exists (state, "none"));
    chunk = zp_state_get_bytes (state, "none");
    ASSERT_NOT_NULL (chunk);
    ASSERT_EQ (zchunk_size (chunk), 0);
    zchunk_destroy (&chunk);

    //  NULL data with a size is a bad argument, and changes nothing
    ASSERT_FAIL_ERRNO (zp_state_set_bytes (state, "bin", NULL, 5), EINVAL);
    chunk = zp_state_get_bytes (state, "bin");
    ASSERT_NOT_NULL (chunk);
    ASSERT_EQ (zchunk_size (chunk), sizeof (data));
    zchunk_destroy (&chunk);

    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_delete)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "k", "v"), 0);
    ASSERT_EQ (zp_state_set_str (state, "other", "w"), 0);
    ASSERT_EQ (zp_state_size (state), 2);
    ASSERT_EQ (zp_state_delete (state, "k"), 0);
    ASSERT_NULL_ERRNO (zp_state_get_str (state, "k"), ENOENT);
    errno = EBUSY;
    ASSERT (!zp_state_exists (state, "k"));
    ASSERT_ERRNO_EQ (0);
    ASSERT_EQ (zp_state_size (state), 1);
    //  Delete again: no such key
    ASSERT_FAIL_ERRNO (zp_state_delete (state, "k"), ENOENT);
    ASSERT_FAIL_ERRNO (zp_state_delete (state, "never"), ENOENT);
    //  The other key is untouched; a deleted key can be set again
    ASSERT_STATE_STR (state, "other", "w");
    ASSERT_EQ (zp_state_set_str (state, "k", "again"), 0);
    ASSERT_STATE_STR (state, "k", "again");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_exists)
{
    OPEN_CTX ();
    errno = EBUSY;
    ASSERT (!zp_state_exists (state, "k"));
    ASSERT_ERRNO_EQ (0);
    ASSERT_EQ (zp_state_set_str (state, "k", "v"), 0);
    ASSERT (zp_state_exists (state, "k"));
    //  Exact keys only: neither a prefix nor an extension exists
    errno = EBUSY;
    ASSERT (!zp_state_exists (state, "kk"));
    ASSERT_ERRNO_EQ (0);
    ASSERT_EQ (zp_state_set_str (state, "dir/file", "v"), 0);
    ASSERT (!zp_state_exists (state, "dir"));
    ASSERT (!zp_state_exists (state, "dir/"));
    ASSERT (zp_state_exists (state, "dir/file"));
    //  Errors say so through errno
    ASSERT (!zp_state_exists (state, ""));
    ASSERT_ERRNO_EQ (EINVAL);
    ASSERT (!zp_state_exists (state, NULL));
    ASSERT_ERRNO_EQ (EINVAL);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Assert that list holds exactly the strings of expected (NULL-terminated)
static void
s_expect_list (zlistx_t *list, const char **expected)
{
    ASSERT_NOT_NULL (list);
    size_t count = 0;
    while (expected [count])
        count++;
    ASSERT_EQ (zlistx_size (list), count);
    const char *key = (const char *) zlistx_first (list);
    size_t index;
    for (index = 0; index < count; index++) {
        ASSERT_STR_EQ (key, expected [index]);
        key = (const char *) zlistx_next (list);
    }
}

TEST_IMPL (state_keys)
{
    OPEN_CTX ();
    const char *keys [] = { "jobs/2", "jobs/10", "jobs/1", "other", "jobs", "jobsX", NULL };
    int index;
    for (index = 0; keys [index]; index++)
        ASSERT_EQ (zp_state_set_str (state, keys [index], "x"), 0);

    //  Under a prefix, sorted bytewise
    const char *jobs [] = { "jobs/1", "jobs/10", "jobs/2", NULL };
    zlistx_t *list = zp_state_keys (state, "jobs/");
    s_expect_list (list, jobs);
    zlistx_destroy (&list);

    //  A prefix is a plain string prefix, not only a path
    const char *job [] = { "jobs", "jobs/1", "jobs/10", "jobs/2", "jobsX", NULL };
    list = zp_state_keys (state, "job");
    s_expect_list (list, job);
    zlistx_destroy (&list);

    //  NULL and "" list every key, sorted
    const char *all [] = { "jobs", "jobs/1", "jobs/10", "jobs/2", "jobsX", "other", NULL };
    list = zp_state_keys (state, NULL);
    s_expect_list (list, all);
    zlistx_destroy (&list);
    list = zp_state_keys (state, "");
    s_expect_list (list, all);
    zlistx_destroy (&list);
    ASSERT_EQ (zp_state_size (state), 6);

    //  No match: an empty list, not an error
    const char *none [] = { NULL };
    list = zp_state_keys (state, "nothing/");
    s_expect_list (list, none);
    zlistx_destroy (&list);

    //  Deleted keys are gone from the listing
    ASSERT_EQ (zp_state_delete (state, "jobs/10"), 0);
    const char *after [] = { "jobs/1", "jobs/2", NULL };
    list = zp_state_keys (state, "jobs/");
    s_expect_list (list, after);
    zlistx_destroy (&list);

    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_size)
{
    OPEN_CTX ();
    //  A fresh context's state is empty
    errno = EBUSY;
    ASSERT_EQ (zp_state_size (state), 0);
    ASSERT_ERRNO_EQ (0);
    ASSERT_EQ (zp_state_set_str (state, "a", "1"), 0);
    ASSERT_EQ (zp_state_set_str (state, "b", "2"), 0);
    ASSERT_EQ (zp_state_set_str (state, "c", "3"), 0);
    ASSERT_EQ (zp_state_size (state), 3);
    //  Overwriting adds nothing
    ASSERT_EQ (zp_state_set_str (state, "b", "22"), 0);
    ASSERT_EQ (zp_state_size (state), 3);
    ASSERT_EQ (zp_state_delete (state, "a"), 0);
    ASSERT_EQ (zp_state_size (state), 2);
    ASSERT_EQ (zp_state_incr (state, "counter", 1, NULL), 0);
    ASSERT_EQ (zp_state_size (state), 3);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_incr)
{
    OPEN_CTX ();
    int64_t result = 0;
    //  A missing key counts as 0
    ASSERT_EQ (zp_state_incr (state, "c", 5, &result), 0);
    ASSERT_EQ (result, 5);
    ASSERT_EQ (zp_state_incr (state, "c", -2, &result), 0);
    ASSERT_EQ (result, 3);
    //  result may be NULL
    ASSERT_EQ (zp_state_incr (state, "c", 1, NULL), 0);
    int64_t value = 0;
    ASSERT_EQ (zp_state_get_int (state, "c", &value), 0);
    ASSERT_EQ (value, 4);
    ASSERT_STATE_STR (state, "c", "4");
    //  A value set as text that parses as int64
    ASSERT_EQ (zp_state_set_str (state, "t", "-10"), 0);
    ASSERT_EQ (zp_state_incr (state, "t", 11, &result), 0);
    ASSERT_EQ (result, 1);

    //  Not an int64: EINVAL, and the value is untouched
    ASSERT_EQ (zp_state_set_str (state, "s", "abc"), 0);
    result = 99;
    ASSERT_FAIL_ERRNO (zp_state_incr (state, "s", 1, &result), EINVAL);
    ASSERT_STATE_STR (state, "s", "abc");
    ASSERT_EQ (zp_state_set_str (state, "s", "1.5"), 0);
    ASSERT_FAIL_ERRNO (zp_state_incr (state, "s", 1, &result), EINVAL);
    ASSERT_STATE_STR (state, "s", "1.5");

    //  Overflow: EINVAL, and the value is untouched
    ASSERT_EQ (zp_state_set_int (state, "big", INT64_MAX), 0);
    ASSERT_FAIL_ERRNO (zp_state_incr (state, "big", 1, &result), EINVAL);
    ASSERT_EQ (zp_state_get_int (state, "big", &value), 0);
    ASSERT (value == INT64_MAX);
    ASSERT_EQ (zp_state_set_int (state, "small", INT64_MIN), 0);
    ASSERT_FAIL_ERRNO (zp_state_incr (state, "small", -1, &result), EINVAL);
    ASSERT_EQ (zp_state_get_int (state, "small", &value), 0);
    ASSERT (value == INT64_MIN);

    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_cas)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "k", "a"), 0);
    //  Swap when equal
    ASSERT_EQ (zp_state_cas_str (state, "k", "a", "b"), 0);
    ASSERT_STATE_STR (state, "k", "b");
    //  EAGAIN when different; nothing changes
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "k", "a", "c"), EAGAIN);
    ASSERT_STATE_STR (state, "k", "b");
    //  A prefix of the value is not the value
    ASSERT_EQ (zp_state_set_str (state, "k", "abc"), 0);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "k", "ab", "x"), EAGAIN);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "k", "abcd", "x"), EAGAIN);
    ASSERT_STATE_STR (state, "k", "abc");

    //  expected NULL: only if the key is absent
    ASSERT_EQ (zp_state_cas_str (state, "new", NULL, "x"), 0);
    ASSERT_STATE_STR (state, "new", "x");
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "new", NULL, "y"), EAGAIN);
    ASSERT_STATE_STR (state, "new", "x");
    //  An absent key differs from any expected value
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "absent", "x", "y"), EAGAIN);
    errno = EBUSY;
    ASSERT (!zp_state_exists (state, "absent"));
    ASSERT_ERRNO_EQ (0);
    //  An empty value is present, and equals ""
    ASSERT_EQ (zp_state_set_str (state, "e", ""), 0);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "e", NULL, "y"), EAGAIN);
    ASSERT_EQ (zp_state_cas_str (state, "e", "", "y"), 0);
    ASSERT_STATE_STR (state, "e", "y");

    //  Bad arguments
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "k", "abc", NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "", "abc", "x"), EINVAL);
    ASSERT_STATE_STR (state, "k", "abc");

    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_key_limits)
{
    OPEN_CTX ();
    char *longest = s_repeat ('k', ZP_KEY_MAX);
    char *too_long = s_repeat ('k', ZP_KEY_MAX + 1);
    ASSERT_EQ (strlen (longest), 255);

    //  255 bytes work everywhere
    ASSERT_EQ (zp_state_set_str (state, longest, "v"), 0);
    ASSERT_STATE_STR (state, longest, "v");
    ASSERT (zp_state_exists (state, longest));
    zlistx_t *list = zp_state_keys (state, "kkk");
    ASSERT_NOT_NULL (list);
    ASSERT_EQ (zlistx_size (list), 1);
    ASSERT_STR_EQ ((const char *) zlistx_first (list), longest);
    zlistx_destroy (&list);
    ASSERT_FAIL_ERRNO (zp_state_incr (state, longest, 1, NULL), EINVAL);   //  "v": no int
    ASSERT_EQ (zp_state_delete (state, longest), 0);

    //  256 bytes, "" and NULL are bad keys everywhere
    const char *bad [] = { too_long, "", NULL };
    int index;
    for (index = 0; index < 3; index++) {
        const char *key = bad [index];
        int64_t number;
        double real;
        ASSERT_FAIL_ERRNO (zp_state_set_str (state, key, "v"), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_set_int (state, key, 1), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_set_double (state, key, 1.0), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_set_bytes (state, key, "v", 1), EINVAL);
        ASSERT_NULL_ERRNO (zp_state_get_str (state, key), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_get_int (state, key, &number), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_get_double (state, key, &real), EINVAL);
        ASSERT_NULL_ERRNO (zp_state_get_bytes (state, key), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_delete (state, key), EINVAL);
        ASSERT (!zp_state_exists (state, key));
        ASSERT_ERRNO_EQ (EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_incr (state, key, 1, NULL), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_cas_str (state, key, NULL, "v"), EINVAL);
        ASSERT_NULL_ERRNO (zp_state_get_when_change (state, key, 10), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_get_when_equal_str (state, key, "v", 10), EINVAL);
        ASSERT_FAIL_ERRNO (zp_state_get_when_available (state, key, 10), EINVAL);
    }
    //  Nothing bad got in
    ASSERT_EQ (zp_state_size (state), 0);

    free (longest);
    free (too_long);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_null_args)
{
    OPEN_CTX ();
    int64_t number;
    double real;
    //  NULL self: EINVAL, no crash
    ASSERT_FAIL_ERRNO (zp_state_set_str (NULL, "k", "v"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_set_int (NULL, "k", 1), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_set_double (NULL, "k", 1.0), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_set_bytes (NULL, "k", "v", 1), EINVAL);
    ASSERT_NULL_ERRNO (zp_state_get_str (NULL, "k"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_int (NULL, "k", &number), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_double (NULL, "k", &real), EINVAL);
    ASSERT_NULL_ERRNO (zp_state_get_bytes (NULL, "k"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_delete (NULL, "k"), EINVAL);
    errno = 0;
    ASSERT (!zp_state_exists (NULL, "k"));
    ASSERT_ERRNO_EQ (EINVAL);
    ASSERT_NULL_ERRNO (zp_state_keys (NULL, NULL), EINVAL);
    errno = 0;
    ASSERT_EQ (zp_state_size (NULL), 0);
    ASSERT_ERRNO_EQ (EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_incr (NULL, "k", 1, NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (NULL, "k", NULL, "v"), EINVAL);
    ASSERT_NULL_ERRNO (zp_state_get_when_change (NULL, "k", 10), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_when_equal_str (NULL, "k", "v", 10), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_when_available (NULL, "k", 10), EINVAL);
    zp_state_set_timeout (NULL, 100);
    zp_state_destroy (NULL);
    zp_state_t *none = NULL;
    zp_state_destroy (&none);
    ASSERT_NULL (none);

    //  NULL values and result pointers
    ASSERT_EQ (zp_state_set_str (state, "k", "1"), 0);
    ASSERT_FAIL_ERRNO (zp_state_set_str (state, "k", NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_int (state, "k", NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_double (state, "k", NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_when_equal_str (state, "k", NULL, 10), EINVAL);
    ASSERT_FAIL_ERRNO (zp_state_get_when (state, NULL, NULL, 10), EINVAL);
    ASSERT_STATE_STR (state, "k", "1");

    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_value_max)
{
    OPEN_CTX ();
    size_t size = ZP_VALUE_MAX + 1;
    char *big = (char *) malloc (size + 1);
    ASSERT_NOT_NULL (big);
    size_t index;
    for (index = 0; index < size; index++)
        big [index] = (char) ('a' + index % 26);
    big [size] = 0;

    //  One byte too many: EMSGSIZE, and nothing is stored
    ASSERT_FAIL_ERRNO (zp_state_set_bytes (state, "big", big, ZP_VALUE_MAX + 1), EMSGSIZE);
    ASSERT_FAIL_ERRNO (zp_state_set_str (state, "big", big), EMSGSIZE);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (state, "big", NULL, big), EMSGSIZE);
    errno = EBUSY;
    ASSERT (!zp_state_exists (state, "big"));
    ASSERT_ERRNO_EQ (0);

    //  Exactly ZP_VALUE_MAX bytes work, both ways
    ASSERT_EQ (zp_state_set_bytes (state, "big", big, ZP_VALUE_MAX), 0);
    zchunk_t *chunk = zp_state_get_bytes (state, "big");
    ASSERT_NOT_NULL (chunk);
    ASSERT_EQ (zchunk_size (chunk), ZP_VALUE_MAX);
    ASSERT_EQ (memcmp (zchunk_data (chunk), big, ZP_VALUE_MAX), 0);
    zchunk_destroy (&chunk);

    //  The store keeps serving
    ASSERT_EQ (zp_state_set_str (state, "small", "s"), 0);
    ASSERT_STATE_STR (state, "small", "s");
    free (big);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_get_missing)
{
    OPEN_CTX ();
    int64_t number = 5;
    double real = 5.0;
    ASSERT_NULL_ERRNO (zp_state_get_str (state, "missing"), ENOENT);
    ASSERT_FAIL_ERRNO (zp_state_get_int (state, "missing", &number), ENOENT);
    ASSERT_FAIL_ERRNO (zp_state_get_double (state, "missing", &real), ENOENT);
    ASSERT_NULL_ERRNO (zp_state_get_bytes (state, "missing"), ENOENT);
    ASSERT_FAIL_ERRNO (zp_state_delete (state, "missing"), ENOENT);
    ASSERT_EQ (number, 5);
    ASSERT (real == 5.0);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_seq)
{
    OPEN_CTX ();
    uint64_t before = zp_state_seq (state);
    ASSERT_EQ (zp_state_set_str (state, "a", "1"), 0);
    uint64_t first = zp_state_seq (state);
    ASSERT_GT (first, before);
    ASSERT_EQ (zp_state_set_str (state, "a", "2"), 0);
    uint64_t second = zp_state_seq (state);
    ASSERT_GT (second, first);
    ASSERT_EQ (zp_state_incr (state, "b", 1, NULL), 0);
    ASSERT_GT (zp_state_seq (state), second);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_second_handle)
{
    OPEN_CTX ();
    zp_state_t *other = zp_state_connect (zp_ctx_endpoint (ctx), zp_ctx_public_key (ctx));
    ASSERT_NOT_NULL (other);
    ASSERT (other != state);

    //  Both handles see one state
    ASSERT_EQ (zp_state_set_str (other, "from-other", "1"), 0);
    ASSERT_STATE_STR (state, "from-other", "1");
    ASSERT_EQ (zp_state_set_str (state, "from-parent", "2"), 0);
    ASSERT_STATE_STR (other, "from-parent", "2");
    int64_t result = 0;
    ASSERT_EQ (zp_state_incr (state, "n", 1, &result), 0);
    ASSERT_EQ (zp_state_incr (other, "n", 1, &result), 0);
    ASSERT_EQ (result, 2);
    ASSERT_EQ (zp_state_size (other), 3);
    ASSERT_EQ (zp_state_delete (other, "from-parent"), 0);
    ASSERT_NULL_ERRNO (zp_state_get_str (state, "from-parent"), ENOENT);

    //  A third handle, destroyed first
    zp_state_t *third = zp_state_connect (zp_ctx_endpoint (ctx), zp_ctx_public_key (ctx));
    ASSERT_NOT_NULL (third);
    ASSERT_STATE_STR (third, "from-other", "1");
    zp_state_destroy (&third);
    ASSERT_NULL (third);
    ASSERT_STATE_STR (other, "from-other", "1");

    zp_state_destroy (&other);
    ASSERT_NULL (other);
    zp_state_destroy (&other);
    ASSERT_STATE_STR (state, "from-other", "1");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_connect_invalid)
{
    OPEN_CTX ();
    ASSERT_NULL_ERRNO (zp_state_connect (NULL, NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_state_connect ("", NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_state_connect ("no-such-transport", NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_state_connect (zp_ctx_endpoint (ctx), "not a key"), EINVAL);
    //  The store is untouched
    ASSERT_EQ (zp_state_set_str (state, "k", "v"), 0);
    ASSERT_STATE_STR (state, "k", "v");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (state_store_gone)
{
    OPEN_CTX ();
    zp_state_t *other = zp_state_connect (zp_ctx_endpoint (ctx), zp_ctx_public_key (ctx));
    ASSERT_NOT_NULL (other);
    ASSERT_EQ (zp_state_set_str (other, "k", "v"), 0);
    ASSERT_STATE_STR (state, "k", "v");

    //  The store goes away under the handle: its calls fail with ENOTCONN
    //  once the handle's timeout has run out
    zp_ctx_destroy (&ctx);
    zp_state_set_timeout (other, 300);
    int64_t start = test_now_ms ();
    ASSERT_NULL_ERRNO (zp_state_get_str (other, "k"), ENOTCONN);
    int64_t elapsed = test_now_ms () - start;
    ASSERT_LE (elapsed, test_ms (5000));
    ASSERT_FAIL_ERRNO (zp_state_set_str (other, "k", "w"), ENOTCONN);
    ASSERT_FAIL_ERRNO (zp_state_incr (other, "n", 1, NULL), ENOTCONN);
    ASSERT_LE (test_now_ms () - start, test_ms (10000));
    zp_state_destroy (&other);
    return 0;
}


TEST_IMPL (state_garbage)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "keep", "me"), 0);
    ASSERT_EQ (zp_state_set_int (state, "count", 7), 0);

    //  A raw socket sends frames no client would send
    zsock_t *raw = zsock_new (ZMQ_DEALER);
    ASSERT_NOT_NULL (raw);
    ASSERT_EQ (zsock_connect (raw, "%s", zp_ctx_endpoint (ctx)), 0);

    ASSERT_EQ (zstr_send (raw, ""), 0);
    ASSERT_EQ (zstr_send (raw, "NOSUCHCOMMAND"), 0);
    ASSERT_EQ (zstr_sendx (raw, "\xff\xfe garbage", "", "more", "\x01", NULL), 0);
    unsigned char noise [257];
    unsigned int seed = 12345;
    size_t index;
    for (index = 0; index < sizeof (noise); index++) {
        seed = seed * 1103515245u + 12345u;
        noise [index] = (unsigned char) (seed >> 16);
    }
    int round;
    for (round = 0; round < 20; round++) {
        zmsg_t *msg = zmsg_new ();
        int frames;
        for (frames = 0; frames <= round % 7; frames++)
            zmsg_addmem (msg, noise + round, (size_t) (round * 13 + frames) % 200);
        ASSERT_EQ (zmsg_send (&msg, raw), 0);
    }
    //  An oversize frame
    zframe_t *huge = zframe_new (NULL, ZP_VALUE_MAX + 4096);
    ASSERT_NOT_NULL (huge);
    memset (zframe_data (huge), 'z', zframe_size (huge));
    ASSERT_EQ (zframe_send (&huge, raw, 0), 0);

    //  Give the store the garbage (drop whatever it answers), then check
    //  that it still serves and lost nothing
    zpoller_t *poller = zpoller_new (raw, NULL);
    while (zpoller_wait (poller, 300)) {
        zmsg_t *answer = zmsg_recv (raw);
        zmsg_destroy (&answer);
    }
    zpoller_destroy (&poller);
    ASSERT_STATE_STR (state, "keep", "me");
    int64_t value = 0;
    ASSERT_EQ (zp_state_get_int (state, "count", &value), 0);
    ASSERT_EQ (value, 7);
    ASSERT_EQ (zp_state_set_str (state, "after", "ok"), 0);
    ASSERT_STATE_STR (state, "after", "ok");
    ASSERT_EQ (zp_state_size (state), 3);

    //  A fresh handle is served too
    zp_state_t *other = zp_state_connect (zp_ctx_endpoint (ctx), zp_ctx_public_key (ctx));
    ASSERT_NOT_NULL (other);
    ASSERT_STATE_STR (other, "keep", "me");
    zp_state_destroy (&other);

    zsock_destroy (&raw);
    zp_ctx_destroy (&ctx);
    return 0;
}
