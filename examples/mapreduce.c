/*  =========================================================================
    mapreduce - a word count split across workers, merged in the state

    Shows atomic updates inside the store. Four workers each count the words
    of one slice of a text, and add every word they meet straight into the
    shared state with zp_state_incr on the key "count/WORD". They increment
    the same keys ("count/the") at the same time, and no update is lost:
    the store applies each increment itself, so there is no read, add and
    write in the workers to race with each other. The parent then checks
    the merged counts against a count of its own, made in one process, and
    prints the five most frequent words:

          111 the
           33 and
        ...
        mapreduce: 774 words, 254 distinct, matches single-process count

    The text is built in, so that the example runs from any directory (make
    distcheck included); give a file name as the first argument to count
    that file instead. A word is a run of ASCII letters, lower-cased.
    =========================================================================
*/

#include <zproc/zproc.h>

#define WORKERS     4
#define WORD_MAX    64          //  Longer words are cut, alike in both counts
#define TOP         5

//  What one worker counts: the bytes [start, end) of the text
typedef struct {
    const char *text;           //  The whole text, read through fork's copy
    size_t start;               //  First byte of the slice
    size_t end;                 //  One past its last byte
} slice_t;

//  One distinct word and how often it occurs
typedef struct {
    const char *word;           //  Points into the sorted words
    int64_t count;              //  Occurrences
} tally_t;

static bool
s_is_letter (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

//  Copy the next word of text at or after *pos, before end, into word,
//  lower-cased and cut to size - 1 bytes; false when there is none
static bool
s_next_word (const char *text, size_t *pos, size_t end, char *word, size_t size)
{
    while (*pos < end && !s_is_letter (text [*pos]))
        (*pos)++;
    if (*pos == end)
        return false;
    size_t length = 0;
    for (; *pos < end && s_is_letter (text [*pos]); (*pos)++)
        if (length < size - 1)
            word [length++] = (char) (text [*pos] | 0x20);  //  ASCII lower case
    word [length] = 0;
    return true;
}

//  Map: count the words of one slice into the shared state. The store adds
//  up what every worker sends, which is the reduce.
static void
s_mapper (zp_worker_t *self, void *props)
{
    slice_t *slice = (slice_t *) props;
    zp_state_t *state = zp_worker_state (self);
    char word [WORD_MAX];
    size_t pos = slice->start;
    while (s_next_word (slice->text, &pos, slice->end, word, sizeof word)) {
        char key [ZP_KEY_MAX + 1];
        snprintf (key, sizeof key, "count/%s", word);
        if (zp_state_incr (state, key, 1, NULL) < 0) {
            fprintf (stderr, "mapreduce: %s cannot count '%s': %s\n",
                     zp_worker_name (self), word, strerror (errno));
            exit (EXIT_FAILURE);
        }
    }
}

//  Alphabetical order, for qsort
static int
s_compare_words (const void *one, const void *two)
{
    return strcmp ((const char *) one, (const char *) two);
}

//  Most frequent first, then in alphabetical order
static int
s_compare_tallies (const void *one, const void *two)
{
    const tally_t *a = (const tally_t *) one;
    const tally_t *b = (const tally_t *) two;
    if (a->count != b->count)
        return a->count > b->count? -1: 1;
    return strcmp (a->word, b->word);
}

//  Check the merged counts in the state against the sorted words, where
//  each run of equal words is one word and its count. Fills tallies (one
//  per distinct word) and returns how many there are, or -1 with a message
//  on stderr.
static ssize_t
s_check_counts (zp_state_t *state, char (*words) [WORD_MAX], size_t total, tally_t *tallies)
{
    ssize_t distinct = 0;
    for (size_t index = 0; index < total; ) {
        const char *word = words [index];
        int64_t count = 0;
        for (; index < total && streq (words [index], word); index++)
            count++;
        char key [ZP_KEY_MAX + 1];
        snprintf (key, sizeof key, "count/%s", word);
        int64_t merged = 0;
        if (zp_state_get_int (state, key, &merged) < 0 && errno != ENOENT) {
            fprintf (stderr, "mapreduce: cannot read %s: %s\n", key, strerror (errno));
            return -1;
        }
        if (merged != count) {
            fprintf (stderr, "mapreduce: '%s' occurs %" PRId64 " times, the workers "
                     "counted %" PRId64 "\n", word, count, merged);
            return -1;
        }
        tallies [distinct++] = (tally_t) { word, count };
    }
    //  And the workers counted no word that is not there
    zlistx_t *keys = zp_state_keys (state, "count/");
    if (!keys || zlistx_size (keys) != (size_t) distinct) {
        if (keys)
            fprintf (stderr, "mapreduce: the workers counted %zu distinct words, not %zd\n",
                     zlistx_size (keys), distinct);
        else
            fprintf (stderr, "mapreduce: cannot list the counts: %s\n", strerror (errno));
        distinct = -1;
    }
    zlistx_destroy (&keys);
    return distinct;
}

//  The text counted when no file is given: a story written for this example
static const char s_text [] =
    "The Keeper of the Harbour Light\n"
    "\n"
    "On the north side of the bay there is a small town, and at the end of its\n"
    "stone pier there is a light. The light is older than the town. Nobody in the\n"
    "town remembers who built it, but everybody knows who keeps it, because the\n"
    "keeper has always been the same kind of person: patient, a little deaf from\n"
    "the wind, and fond of lists.\n"
    "\n"
    "Every evening the keeper climbs the tower with a lamp in one hand and a book\n"
    "in the other. The book is a list of ships. Each ship that passes the light is\n"
    "written down with the hour, the weather and the name of its master, and each\n"
    "ship that comes back is written down again, so that the town can always tell\n"
    "which of its ships are at sea and which are safe in the harbour.\n"
    "\n"
    "The keeper does not sail. The keeper does not fish. The keeper watches, and\n"
    "the keeper writes, and when something changes the keeper rings the bell. One\n"
    "ring means a ship is coming home. Two rings mean a ship is late. Three rings\n"
    "mean that the men should come down to the pier with ropes and lanterns,\n"
    "because the sea has decided something that the book did not expect.\n"
    "\n"
    "The people of the town do not climb the tower to read the book. They do not\n"
    "need to. The bell tells them what has changed, and only what has changed, and\n"
    "so each of them can go on with their own work until the bell gives them a\n"
    "reason to stop. The baker bakes, the net maker mends nets, the children go to\n"
    "school, and the keeper keeps the light.\n"
    "\n"
    "There was a winter, long ago, when the town tried another way. Every house\n"
    "kept its own copy of the book. When a ship came in, the master had to knock on\n"
    "every door and tell every house, and every house wrote it down in its own\n"
    "hand. It took the masters half the night. Some houses were asleep and did not\n"
    "answer. Some wrote the wrong name, and some wrote the right name in the wrong\n"
    "place, and by the end of the winter no two books in the town agreed about\n"
    "anything at all. A boat was given up for lost while it sat in the harbour,\n"
    "and another was thought safe while it was still out in the storm.\n"
    "\n"
    "In the spring the town gave the book back to the keeper. One book, in one\n"
    "place, written by one hand. Anybody may ask the keeper what the book says,\n"
    "and anybody may bring news to the keeper, but only the keeper writes. If two\n"
    "masters come up the stairs at the same moment with news of the same ship, the\n"
    "keeper writes the first and then the second, in order, and the book is never\n"
    "torn between them.\n"
    "\n"
    "The children of the town like to send messages to each other through the\n"
    "keeper. A child on the east side writes a note with a name on it and gives it\n"
    "to the keeper, and the keeper puts it in the box with that name, and the child\n"
    "on the west side finds it there in the morning. The keeper never reads the\n"
    "notes. The keeper only cares that each note goes to the right box, that notes\n"
    "from one child arrive in the order they were written, and that no box holds\n"
    "more notes than it can take.\n"
    "\n"
    "When a fisherman falls ill, another takes his boat, and the keeper writes the\n"
    "new name in the book beside the old one, so that the boat is never without a\n"
    "master and the town never loses count of its boats. The work that was left\n"
    "half done is still in the book, and the new master picks it up where the old\n"
    "one put it down. Nothing is lost, because nothing was ever kept only in one\n"
    "head.\n"
    "\n"
    "And when the keeper grows old, the town does not wait for the light to go out.\n"
    "A new keeper is chosen in good time, climbs the tower beside the old one for a\n"
    "season, learns the bell and the book and the lamp, and one evening simply\n"
    "takes the lamp from the hand of the old keeper. The light does not blink. The ships\n"
    "at sea do not notice. That, the old people of the town say, is the whole art\n"
    "of keeping a light: that it should never be noticed, except when it is\n"
    "needed, and then it should always be there.\n";

int
main (int argc, char *argv [])
{
    const char *text = s_text;
    size_t size = strlen (s_text);
    zchunk_t *chunk = NULL;
    if (argc > 1) {
        chunk = zchunk_slurp (argv [1], 0);
        if (!chunk) {
            fprintf (stderr, "mapreduce: cannot read %s\n", argv [1]);
            return EXIT_FAILURE;
        }
        text = (const char *) zchunk_data (chunk);
        size = zchunk_size (chunk);
    }
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "mapreduce: cannot create a context: %s\n", strerror (errno));
        zchunk_destroy (&chunk);
        return EXIT_FAILURE;
    }
    //  Cut the text into WORKERS slices of about the same size, moving each
    //  cut forward to the end of a word so that no word is split
    slice_t slices [WORKERS];
    zp_proc_t *mappers [WORKERS];
    bool ok = true;
    for (int index = 0; ok && index < WORKERS; index++) {
        slice_t *slice = &slices [index];
        slice->text = text;
        slice->start = index? slices [index - 1].end: 0;
        slice->end = size * (index + 1) / WORKERS;
        if (slice->end < slice->start)
            slice->end = slice->start;
        while (slice->end < size && s_is_letter (text [slice->end]))
            slice->end++;
        mappers [index] = zp_ctx_spawn (ctx, NULL, s_mapper, slice);
        if (!mappers [index]) {
            fprintf (stderr, "mapreduce: cannot start a worker: %s\n", strerror (errno));
            ok = false;
        }
    }
    //  A mapper that failed has said why; all of them must end with 0
    for (int index = 0; ok && index < WORKERS; index++) {
        int code = zp_proc_wait (mappers [index], 10000);
        if (code == -1)
            fprintf (stderr, "mapreduce: %s did not end: %s\n",
                     zp_proc_name (mappers [index]), strerror (errno));
        else
        if (code != 0)
            fprintf (stderr, "mapreduce: %s ended with %d\n", zp_proc_name (mappers [index]), code);
        ok = code == 0;
    }
    //  The single-process count: every word in a row of its own, sorted
    size_t total = 0;
    char word [WORD_MAX];
    size_t pos = 0;
    while (s_next_word (text, &pos, size, word, sizeof word))
        total++;
    char (*words) [WORD_MAX] = (char (*) [WORD_MAX]) malloc ((total + 1) * WORD_MAX);
    tally_t *tallies = (tally_t *) calloc (total + 1, sizeof (tally_t));
    if (!words || !tallies) {
        fprintf (stderr, "mapreduce: out of memory\n");
        ok = false;
    }
    pos = 0;
    for (size_t index = 0; ok && index < total; index++)
        s_next_word (text, &pos, size, words [index], WORD_MAX);
    if (ok)
        qsort (words, total, WORD_MAX, s_compare_words);

    ssize_t distinct = ok? s_check_counts (zp_ctx_state (ctx), words, total, tallies): -1;
    if (distinct >= 0) {
        qsort (tallies, distinct, sizeof (tally_t), s_compare_tallies);
        for (ssize_t index = 0; index < distinct && index < TOP; index++)
            printf ("%7" PRId64 " %s\n", tallies [index].count, tallies [index].word);
        printf ("mapreduce: %zu words, %zd distinct, matches single-process count\n",
                total, distinct);
    }
    free (words);
    free (tallies);
    zp_ctx_destroy (&ctx);
    zchunk_destroy (&chunk);
    return distinct >= 0? EXIT_SUCCESS: EXIT_FAILURE;
}
