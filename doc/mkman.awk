#  mkman.awk - a manual page made from a public header of zproc
#
#  awk -v section=3 -v version=0.1.0 -f doc/mkman.awk include/zproc/zp_state.h
#
#  The header is the reference (STYLE.md): its top comment becomes NAME and
#  DESCRIPTION, its declarations verbatim the SYNOPSIS, and each function
#  with the comment above it an entry of FUNCTIONS. A function without a
#  comment is flagged "(undocumented)", which the test man_pages rejects.
#  POSIX awk only (mawk, gawk, busybox): no blank between a function of
#  this file and its "(".

#  Escape a line for troff: backslashes, and a leading dot or quote
function esc(text) {
    gsub (/\\/, "\\e", text)
    gsub (/-/, "\\-", text)
    if (text ~ /^[.']/)
        text = "\\&" text
    return text
}

#  Text after the comment marker, without the usual two spaces
function comment_text(line) {
    sub (/^[ \t]*\/\/ ?/, "", line)
    sub (/^ /, "", line)
    return line
}

#  Append one line of prose or of an indented table to text in troff:
#  lines indented by two or more spaces more than prose are kept as they are
function prose_add(text, line, indented) {
    if (line ~ /^[ \t]*$/)
        return text "\n.PP"
    if (line ~ /^    /) {
        if (!indented)
            text = text "\n.nf\n.RS 2"
        return text "\n" esc(line)
    }
    if (indented)
        text = text "\n.RE\n.fi"
    return text "\n" esc(line)
}

BEGIN {
    part = "before"
    nbody = 0
    nentries = 0
}

#  The top comment: "name - purpose", then the description
part == "before" && /^\/\*/ { part = "top"; next }
part == "top" && /^\*\// { part = "body"; next }
part == "top" {
    if ($0 ~ /^[ \t]*=+[ \t]*$/)
        next
    line = $0
    sub (/^    /, "", line)
    if (name == "" && line !~ /^[ \t]*$/) {
        name = line
        sub (/ - .*/, "", name)
        purpose = line
        sub (/^[^ ]* - /, "", purpose)
        next
    }
    desc [++ndesc] = line
    next
}

#  The body: skip the include guard, C++ linkage and conditionals
part == "body" {
    if ($0 ~ /^#(ifndef|ifdef|if|endif|else|elif|include|[ \t]*error)/ \
    ||  $0 ~ /^#define [A-Z_]*_INCLUDED/ \
    ||  $0 ~ /^extern "C"/ || $0 ~ /^}[ \t]*$/)
        next
    body [++nbody] = $0
}

END {
    upper = toupper (name)
    printf (".\\\" %s(%s) - made by doc/mkman.awk from include/zproc/%s.h: edit the header\n",
            name, section, name)
    printf (".TH %s %s \"\" \"zproc %s\" \"zproc Manual\"\n", upper, section, version)
    printf (".SH NAME\n%s \\- %s\n", name, esc(purpose))

    #  SYNOPSIS: the declarations as the header has them, without their
    #  comments (FUNCTIONS has them) and runs of blank lines
    printf (".SH SYNOPSIS\n.nf\n.B #include <zproc/zproc.h>\n.PP\n")
    blank = 1
    for (index_ = 1; index_ <= nbody; index_++) {
        if (body [index_] ~ /^\/\//)
            continue
        if (body [index_] ~ /^[ \t]*$/) {
            if (!blank)
                printf ("\n")
            blank = 1
            continue
        }
        blank = 0
        printf ("%s\n", esc(body [index_]))
    }
    printf (".fi\n.PP\nCompile and link with \\fBpkg\\-config \\-\\-cflags \\-\\-libs libzproc\\fR.\n")

    #  DESCRIPTION: the header's top comment
    printf (".SH DESCRIPTION")
    text = ""
    indented = 0
    for (index_ = 1; index_ <= ndesc; index_++) {
        text = prose_add(text, desc [index_], indented)
        indented = desc [index_] ~ /^    /
    }
    if (indented)
        text = text "\n.RE\n.fi"
    sub (/^\n\.PP/, "", text)
    gsub (/\n\.PP(\n\.PP)+/, "\n.PP", text)
    sub (/\n\.PP$/, "", text)
    printf ("%s\n", text)

    #  FUNCTIONS: each group of declarations with its comment
    printf (".SH FUNCTIONS\n")
    ncomment = 0
    ndecl = 0
    for (index_ = 1; index_ <= nbody + 1; index_++) {
        line = index_ <= nbody? body [index_]: ""
        if (line ~ /^\/\//) {
            if (ndecl)
                flush_group()
            comment [++ncomment] = comment_text(line)
            continue
        }
        if (line ~ /^[ \t]*$/) {
            flush_group()
            continue
        }
        decl [++ndecl] = line
    }
    printf (".SH SEE ALSO\n")
    printf ("\\fBzproc\\fR(7), \\fBzproc\\fR(1), \\fBczmq\\fR(7)\n")
}

#  Print the group of declarations and comment gathered, if it declares
#  functions; forget it either way
function flush_group(    names, joined, count, index2, line, text, indented, fn) {
    joined = ""
    count = 0
    for (index2 = 1; index2 <= ndecl; index2++) {
        line = decl [index2]
        if (line ~ /^[ \t]+zp_[a-z0-9_]+ *\(/) {
            fn = line
            sub (/^[ \t]+/, "", fn)
            sub (/ *\(.*/, "", fn)
            joined = joined (count++? ", ": "") fn
        }
    }
    if (count) {
        printf (".SS %s\n.nf\n", joined)
        for (index2 = 1; index2 <= ndecl; index2++)
            printf ("%s\n", esc(decl [index2]))
        printf (".fi\n")
        if (ncomment == 0)
            printf ("(undocumented)\n")
        text = ""
        indented = 0
        for (index2 = 1; index2 <= ncomment; index2++) {
            text = prose_add(text, comment [index2], indented)
            indented = comment [index2] ~ /^    /
        }
        if (indented)
            text = text "\n.RE\n.fi"
        sub (/^\n/, "", text)
        if (text != "")
            printf ("%s\n", text)
    }
    ncomment = 0
    ndecl = 0
}
