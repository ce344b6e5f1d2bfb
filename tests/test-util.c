/*  =========================================================================
    test-util - zp_strerror and zp_version
    =========================================================================
*/

#include "config.h"
#include "harness.h"

TEST_IMPL (util_strerror)
{
    //  Every errno of the contract has zproc's own words, each different
    int contract [] = {
        ENOENT, EINVAL, ETIMEDOUT, EINTR, EMSGSIZE, ENOTCONN, EACCES, EAGAIN,
        ENOBUFS, EMFILE, ESRCH, EIO
    };
    size_t count = sizeof (contract) / sizeof (contract [0]);
    size_t index, other;
    for (index = 0; index < count; index++) {
        const char *text = zp_strerror (contract [index]);
        ASSERT_NOT_NULL (text);
        ASSERT (strlen (text) > 0);
        //  Not the C library's words
        ASSERT (strcmp (text, strerror (contract [index])) != 0);
        for (other = 0; other < index; other++)
            ASSERT (strcmp (text, zp_strerror (contract [other])) != 0);
    }
    ASSERT_STR_EQ (zp_strerror (ENOTCONN), "the store is gone");
    ASSERT_STR_EQ (zp_strerror (ETIMEDOUT), "the timeout ran out");
    //  The same static string on every call; errno untouched
    errno = 0;
    ASSERT (zp_strerror (EAGAIN) == zp_strerror (EAGAIN));
    ASSERT_ERRNO_EQ (0);
    //  Others: the C library's text
    char expected [256];
    snprintf (expected, sizeof (expected), "%s", strerror (EPIPE));
    ASSERT_STR_EQ (zp_strerror (EPIPE), expected);
    snprintf (expected, sizeof (expected), "%s", strerror (12345));
    ASSERT_STR_EQ (zp_strerror (12345), expected);
    return 0;
}


TEST_IMPL (util_version)
{
    char expected [64];
    snprintf (expected, sizeof (expected), "%d.%d.%d", ZPROC_VERSION_MAJOR,
              ZPROC_VERSION_MINOR, ZPROC_VERSION_PATCH);
    ASSERT_STR_EQ (zp_version (), expected);
    //  configure.ac's version (the package, libzproc.pc) is the header's
    ASSERT_STR_EQ (zp_version (), PACKAGE_VERSION);
    ASSERT_EQ (ZPROC_VERSION, ZPROC_MAKE_VERSION (ZPROC_VERSION_MAJOR, ZPROC_VERSION_MINOR,
                                                  ZPROC_VERSION_PATCH));
    return 0;
}
