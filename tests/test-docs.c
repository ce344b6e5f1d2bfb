/*  =========================================================================
    test-docs - the documentation is kept in step with the code

    Every public header has its manual page (made by doc/mkman.awk and
    installed), every function of a header has its entry and comment there,
    zproc(7) names every page, every environment variable the sources read
    is in the README's table and in zproc(7), and the pages carry the
    package's version. The headers and sources are found at run time, so a
    header or a getenv added by anyone is covered without touching this file.
    =========================================================================
*/

#include "config.h"
#include "harness.h"
#include <dirent.h>
#include <ctype.h>
#include <sys/stat.h>

//  The whole file at path as a fresh string, or NULL
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    struct stat st;
    char *text = NULL;
    if (fstat (fileno (file), &st) == 0 && (text = (char *) malloc ((size_t) st.st_size + 1))) {
        size_t size = fread (text, 1, (size_t) st.st_size, file);
        text [size] = 0;
    }
    fclose (file);
    return text;
}

//  A fresh string: the source tree's path of relative
static char *
s_src_path (const char *relative)
{
    size_t size = strlen (ZPROC_SRCDIR) + strlen (relative) + 2;
    char *path = (char *) malloc (size);
    snprintf (path, size, "%s/%s", ZPROC_SRCDIR, relative);
    return path;
}

//  The files of the source directory dir whose names end in suffix, sorted
static zlistx_t *
s_src_files (const char *dir, const char *suffix)
{
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    char *path = s_src_path (dir);
    DIR *handle = opendir (path);
    ASSERT_NOT_NULL (handle);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length > strlen (suffix)
        &&  strcmp (entry->d_name + length - strlen (suffix), suffix) == 0)
            zlistx_add_end (names, zsys_sprintf ("%s/%s", dir, entry->d_name));
    }
    closedir (handle);
    free (path);
    zlistx_sort (names);
    return names;
}

//  Blank out the comments of C text, in place
static void
s_strip_comments (char *text)
{
    char *cursor = text;
    while (*cursor) {
        if (cursor [0] == '/' && cursor [1] == '/')
            while (*cursor && *cursor != '\n')
                *cursor++ = ' ';
        else
        if (cursor [0] == '/' && cursor [1] == '*') {
            char *end = strstr (cursor + 2, "*/");
            char *stop = end? end + 2: cursor + strlen (cursor);
            while (cursor < stop) {
                if (*cursor != '\n')
                    *cursor = ' ';
                cursor++;
            }
        }
        else
            cursor++;
    }
}

//  The functions a header declares: every zp_name followed by "(" outside
//  comments, except names in parentheses (function types, "(zp_name_fn)")
static zlistx_t *
s_header_functions (const char *text)
{
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    char *code = strdup (text);
    s_strip_comments (code);
    const char *cursor = code;
    while ((cursor = strstr (cursor, "zp_"))) {
        const char *start = cursor;
        bool word_start = start == code || !(isalnum ((unsigned char) start [-1])
                                           || start [-1] == '_');
        while (isalnum ((unsigned char) *cursor) || *cursor == '_')
            cursor++;
        const char *after = cursor;
        while (*after == ' ')
            after++;
        const char *before = start;
        while (before > code && before [-1] == ' ')
            before--;
        if (word_start && *after == '(' && !(before > code && before [-1] == '('))
            zlistx_add_end (names, zsys_sprintf ("%.*s", (int) (cursor - start), start));
    }
    free (code);
    return names;
}

//  True when name is one of the function names of a ".SS" line of page
static bool
s_page_has_entry (const char *page, const char *name)
{
    const char *line = page;
    while (line && *line) {
        if (strncmp (line, ".SS ", 4) == 0) {
            size_t length = strcspn (line, "\n");
            char *heading = zsys_sprintf ("%.*s,", (int) (length - 4), line + 4);
            char *wanted = zsys_sprintf ("%s,", name);
            //  "a, b, c," holds "b," as a whole name
            char *found = strstr (heading, wanted);
            bool match = found && (found == heading || found [-1] == ' ');
            zstr_free (&heading);
            zstr_free (&wanted);
            if (match)
                return true;
        }
        line = strchr (line, '\n');
        line = line? line + 1: NULL;
    }
    return false;
}


TEST_IMPL (docs_man_pages)
{
    char *path = s_src_path ("doc/zproc.7");
    char *overview = s_slurp (path);
    ASSERT_NOT_NULL (overview);
    free (path);
    zlistx_t *headers = s_src_files ("include/zproc", ".h");
    ASSERT (zlistx_size (headers) >= 6);
    size_t functions = 0;
    const char *header;
    for (header = (const char *) zlistx_first (headers); header;
         header = (const char *) zlistx_next (headers)) {
        path = s_src_path (header);
        char *text = s_slurp (path);
        ASSERT_NOT_NULL (text);
        free (path);
        //  include/zproc/NAME.h gives include/zproc/NAME.3 in the build tree
        char *relative = zsys_sprintf ("../%.*s.3", (int) (strlen (header) - 2), header);
        path = test_build_path (relative);
        char *page = s_slurp (path);
        if (!page)
            fprintf (stderr, "%s has no manual page %s: list it in zprocinclude_HEADERS "
                     "(Makefile.am), which makes and installs its page\n", header, path);
        ASSERT_NOT_NULL (page);
        if (strstr (page, "(undocumented)"))
            fprintf (stderr, "%s: a function without its comment in %s\n", path, header);
        ASSERT_NULL (strstr (page, "(undocumented)"));
        zlistx_t *names = s_header_functions (text);
        const char *name;
        for (name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names)) {
            if (!s_page_has_entry (page, name))
                fprintf (stderr, "%s: no entry for %s of %s (doc/mkman.awk expects the "
                         "header's layout: a comment, the type, then the indented name)\n",
                         path, name, header);
            ASSERT (s_page_has_entry (page, name));
            functions++;
        }
        //  zproc(7) points to the page
        char *base = strrchr (relative, '/') + 1;
        base [strlen (base) - 2] = 0;
        char *reference = zsys_sprintf (".BR %s (3)", base);
        if (!strstr (overview, reference))
            fprintf (stderr, "doc/zproc.7 does not name %s(3)\n", base);
        ASSERT_NOT_NULL (strstr (overview, reference));
        zstr_free (&reference);
        zlistx_destroy (&names);
        free (page);
        free (path);
        zstr_free (&relative);
        free (text);
    }
    //  zp_ctx, zp_state, ... have dozens between them
    ASSERT_GE (functions, 60);
    zlistx_destroy (&headers);
    free (overview);
    return 0;
}


//  Every getenv ("NAME") of the sources, in the README and in zproc(7)
TEST_IMPL (docs_environment)
{
    char *path = s_src_path ("README.md");
    char *readme = s_slurp (path);
    ASSERT_NOT_NULL (readme);
    free (path);
    path = s_src_path ("doc/zproc.7");
    char *overview = s_slurp (path);
    ASSERT_NOT_NULL (overview);
    free (path);
    const char *dirs [] = { "actors", "tools", "tests", "bench", "examples" };
    size_t found = 0, index;
    for (index = 0; index < sizeof (dirs) / sizeof (dirs [0]); index++) {
        zlistx_t *sources = s_src_files (dirs [index], ".c");
        const char *source;
        for (source = (const char *) zlistx_first (sources); source;
             source = (const char *) zlistx_next (sources)) {
            path = s_src_path (source);
            char *text = s_slurp (path);
            ASSERT_NOT_NULL (text);
            free (path);
            s_strip_comments (text);
            const char *cursor = text;
            while ((cursor = strstr (cursor, "getenv"))) {
                cursor += 6;
                while (*cursor == ' ')
                    cursor++;
                if (*cursor++ != '(')
                    continue;       //  Not a call
                while (*cursor == ' ')
                    cursor++;
                if (*cursor != '"')
                    continue;       //  A name held in a variable
                size_t length = strcspn (cursor + 1, "\"");
                char *name = zsys_sprintf ("`%.*s`", (int) length, cursor + 1);
                char *bare = zsys_sprintf ("%.*s", (int) length, cursor + 1);
                if (!strstr (readme, name))
                    fprintf (stderr, "%s reads %s: add it to the README's environment "
                             "table (Signals, threads and environment)\n", source, bare);
                ASSERT_NOT_NULL (strstr (readme, name));
                if (!strstr (overview, bare))
                    fprintf (stderr, "%s reads %s: add it to doc/zproc.7 (ENVIRONMENT)\n",
                             source, bare);
                ASSERT_NOT_NULL (strstr (overview, bare));
                zstr_free (&name);
                zstr_free (&bare);
                found++;
            }
            free (text);
        }
        zlistx_destroy (&sources);
    }
    ASSERT_GE (found, 8);
    free (overview);
    free (readme);
    return 0;
}


//  The pages carry the package's version
TEST_IMPL (docs_versions)
{
    const char *pages [] = { "doc/zproc.7", "tools/zproc.1" };
    char *expected = zsys_sprintf ("\"zproc %s\"", PACKAGE_VERSION);
    size_t index;
    for (index = 0; index < sizeof (pages) / sizeof (pages [0]); index++) {
        char *path = s_src_path (pages [index]);
        char *page = s_slurp (path);
        ASSERT_NOT_NULL (page);
        char *th = strstr (page, "\n.TH ");
        ASSERT_NOT_NULL (th);
        size_t length = strcspn (th + 1, "\n");
        char *line = zsys_sprintf ("%.*s", (int) length, th + 1);
        if (!strstr (line, expected))
            fprintf (stderr, "%s: %s does not say %s\n", pages [index], line, expected);
        ASSERT_NOT_NULL (strstr (line, expected));
        zstr_free (&line);
        free (page);
        free (path);
    }
    zstr_free (&expected);
    return 0;
}
