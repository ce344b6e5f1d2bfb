/*  zproc-bench: placeholder until the benchmark lands */
#include <zproc/zproc.h>
int main (void) { printf ("zproc-bench: not written yet\n"); return 0; }
