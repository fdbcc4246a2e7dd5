/*
 * plugins/route/rules.h - uWSGI's internal routing language without the
 * server: rule lines parsed into rule tables, PCRE2 regexes, templates with
 * $1..$9 and ${VAR} compiled once and expanded per request, conditions,
 * and the helpers of the actions (basic auth, rewrite, Location encoding).
 *
 * Nothing here includes wharf.h: route_plugin.c is the thin layer that
 * reads the options and runs the tables on requests, and the unit tests
 * (tests/unit/test_route.c) and the fuzzer (tests/fuzz/fuzz_route.c) link
 * this file alone.  Request data reaches it through route_lookup_fn.
 */
#ifndef WHARF_ROUTE_RULES_H
#define WHARF_ROUTE_RULES_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* $0..$9, as uWSGI */
#define ROUTE_MAX_GROUPS 10
/* Longest expansion of one action argument; longer results make the action
 * fail (the request gets a 500) instead of growing without bound. */
#define ROUTE_SUBST_MAX 16384
/* Longest Authorization header value accepted by basicauth. */
#define ROUTE_AUTH_MAX 1024

/* The routing chains of uWSGI: request (route*), response (response-route*,
 * just before the response head is sent) and final (final-route*, after
 * the response, for logging). */
enum route_chain {
    ROUTE_CHAIN_REQUEST = 0,
    ROUTE_CHAIN_RESPONSE,
    ROUTE_CHAIN_FINAL,
    ROUTE_CHAINS
};

/* What a rule's regex is matched against (the option's suffix). */
enum route_subject {
    ROUTE_SUBJ_PATH = 0,    /* route: PATH_INFO */
    ROUTE_SUBJ_HOST,        /* route-host: HTTP_HOST */
    ROUTE_SUBJ_URI,         /* route-uri: REQUEST_URI */
    ROUTE_SUBJ_QS,          /* route-qs: QUERY_STRING */
    ROUTE_SUBJ_REMOTE_ADDR, /* route-remote-addr: REMOTE_ADDR */
    ROUTE_SUBJ_USER_AGENT,  /* route-user-agent: HTTP_USER_AGENT */
    ROUTE_SUBJ_REFERER,     /* route-referer: HTTP_REFERER */
    ROUTE_SUBJ_REGEX_END,   /* subjects above match a regex */
    ROUTE_SUBJ_RUN = ROUTE_SUBJ_REGEX_END, /* route-run: no condition */
    ROUTE_SUBJ_IF,          /* route-if / route-if-not: a condition */
    ROUTE_SUBJ_LABEL,       /* route-label: a goto target */
};

enum route_cond {
    ROUTE_COND_NONE = 0,
    ROUTE_COND_EXISTS,
    ROUTE_COND_ISFILE,
    ROUTE_COND_ISDIR,
    ROUTE_COND_ISLINK,
    ROUTE_COND_ISEXEC,
    ROUTE_COND_EMPTY,
    ROUTE_COND_EQUAL,      /* the conditions below take "A;B" */
    ROUTE_COND_STARTSWITH,
    ROUTE_COND_ENDSWITH,
    ROUTE_COND_CONTAINS,
    ROUTE_COND_REGEXP,     /* "A;REGEX": B is a regex, compiled at load */
    ROUTE_COND_HIGHER,
    ROUTE_COND_HIGHEREQUAL,
    ROUTE_COND_LOWER,
    ROUTE_COND_LOWEREQUAL,
    ROUTE_COND_IPV4IN,     /* "ADDR;NET/BITS" */
    ROUTE_COND_IPV6IN,
};

enum route_action {
    ROUTE_ACT_NONE = 0,  /* labels */
    ROUTE_ACT_CONTINUE,  /* continue, last */
    ROUTE_ACT_BREAK,     /* break[:CODE [REASON]] */
    ROUTE_ACT_RETURN,    /* return:CODE, break-with-status:CODE */
    ROUTE_ACT_REDIRECT,  /* redirect[-30x|-permanent]:URL */
    ROUTE_ACT_REWRITE,   /* rewrite:PATH[?QS], rewrite-last */
    ROUTE_ACT_GOTO,      /* goto:LABEL */
    ROUTE_ACT_ADDHEADER, /* addheader:Name: value */
    ROUTE_ACT_DELHEADER, /* delheader:Name, remheader */
    ROUTE_ACT_SETVAR,    /* addvar:NAME=VALUE, setvar */
    ROUTE_ACT_LOG,       /* log:TEXT */
    ROUTE_ACT_BASICAUTH, /* basicauth[-next]:REALM,CREDENTIALS */
};

/* ------------------------------------------------------------ templates */

enum route_tok_kind {
    ROUTE_TOK_LIT = 0, /* s[0..len) */
    ROUTE_TOK_GROUP,   /* $N */
    ROUTE_TOK_VAR,     /* ${s}, or ${s[arg]} when arg */
};

struct route_tok {
    uint8_t kind;
    uint8_t group;      /* ROUTE_TOK_GROUP */
    bool dynamic;       /* VAR whose name/arg holds $N, expanded first */
    const char *s;      /* literal text or variable name */
    size_t len;
    const char *arg;    /* ${name[arg]}: arg; NULL otherwise */
    size_t arg_len;
};

struct route_tmpl {
    char *text;         /* owned copy the tokens point into */
    size_t text_len;
    struct route_tok *toks;
    size_t ntoks;
    bool is_static;     /* only literal text: no $N, no ${VAR} */
};

/* Captures of the last regex that matched: pointers into its subject,
 * which outlives the rule run (request memory). */
struct route_caps {
    unsigned n;                         /* groups set: $0..$(n-1) */
    const char *s[ROUTE_MAX_GROUPS];    /* NULL: group did not take part */
    size_t len[ROUTE_MAX_GROUPS];
};

/* Request data for ${VAR}: fill *val and *len and return true when `name`
 * (name_len bytes, not NUL-terminated) has a value.  `arg` is set for
 * ${name[arg]} forms that rules.c does not know itself (it handles
 * cookie[...] and qs[...] through HTTP_COOKIE and QUERY_STRING).  The
 * value may be written to `scratch` (scratch_len bytes). */
typedef bool (*route_lookup_fn)(void *ctx, const char *name, size_t name_len,
                                const char *arg, size_t arg_len,
                                char *scratch, size_t scratch_len,
                                const char **val, size_t *len);

/* Compile `text` (len bytes).  Never fails on syntax: whatever is not a
 * substitution is literal, as in uWSGI.  Returns 0, -1 on allocation
 * failure. */
int route_tmpl_compile(struct route_tmpl *, const char *text, size_t len);
void route_tmpl_free(struct route_tmpl *);
/* Expand into out[0..cap): returns the length (out is NUL-terminated), or
 * -1 when the result needs cap bytes or more.  Captured text is inserted
 * as is: it is never expanded again (uWSGI expands ${..} inside captured
 * text; see route_plugin.c).  `caps` and `lookup` may be NULL. */
ssize_t route_tmpl_expand(const struct route_tmpl *, const struct route_caps *,
                          route_lookup_fn lookup, void *ctx, char *out, size_t cap);

/* ------------------------------------------------------------ regexes */

struct route_regex {
    pcre2_code *code;
    bool jit;           /* JIT-compiled (pcre2_jit_match) */
    char *pattern;
};

/* Compile `pattern`; on error fill `err` with PCRE2's message and offset. */
int route_regex_compile(struct route_regex *, const char *pattern, bool use_jit,
                        char *err, size_t errlen);
void route_regex_free(struct route_regex *);
/* 1 match (caps filled when not NULL), 0 no match, -1 matching failed (a
 * resource limit was hit: the rule does not apply).  `md` holds at least
 * ROUTE_MAX_GROUPS pairs; `mctx` may be NULL. */
int route_regex_match(const struct route_regex *, const char *subject, size_t len,
                      pcre2_match_data *md, pcre2_match_context *mctx,
                      struct route_caps *caps);

/* ------------------------------------------------------------ basic auth */

struct route_htpasswd_entry {
    char *user;
    char *hash;
    bool sha1;          /* {SHA}base64: Apache's htpasswd -s */
};

struct route_htpasswd {
    char *path;
    struct route_htpasswd_entry *entries;
    size_t count;
};

/* Load an htpasswd file: "user:hash" lines, hashes from crypt(3) (bcrypt
 * $2y$, sha512 $6$, sha256 $5$, md5 $1$, yescrypt $y$, DES) or {SHA}.
 * Errors name path:line. */
int route_htpasswd_load(struct route_htpasswd *, const char *path, char *err, size_t errlen);
void route_htpasswd_free(struct route_htpasswd *);
/* The user's password is right: returns the user name length, else 0. */
size_t route_htpasswd_check(const struct route_htpasswd *, const char *user, size_t ulen,
                            const char *pass, size_t plen);

/* Decode "Basic <base64>" into out (NUL-terminated); returns the decoded
 * length or -1 when the value is not a well-formed Basic credential. */
ssize_t route_basic_decode(const char *value, size_t len, char *out, size_t cap);
/* Compare without an early exit (time depends on b_len only). */
bool route_ct_equal(const char *a, size_t a_len, const char *b, size_t b_len);
void route_sha1(const void *data, size_t len, unsigned char out[20]);
size_t route_base64_encode(const unsigned char *in, size_t len, char *out);

/* ------------------------------------------------------------ rules */

struct route_rule {
    enum route_chain chain;
    enum route_subject subject;
    const char *option;        /* "route-host" (static storage) */
    const char *origin;        /* "app.ini:12" (not owned) */
    char *value;               /* the line as given */
    unsigned pos;              /* index in its chain (labels count too) */

    /* condition */
    struct route_regex re;     /* regex subjects and COND_REGEXP */
    enum route_cond cond;
    bool negate;               /* route-if-not */
    struct route_tmpl cond_a, cond_b;

    char *label;               /* ROUTE_SUBJ_LABEL */

    /* action */
    enum route_action action;
    char *action_text;         /* "break:200" */
    struct route_tmpl arg;     /* log text, URL, rewrite target, header... */
    int status;                /* break / return / redirect */
    char *reason;              /* break:CODE REASON */
    bool last;                 /* rewrite-last */
    bool next;                 /* basicauth-next */
    char *var_name;            /* addvar */
    size_t goto_target;        /* static goto: index of the label rule */
    bool goto_dynamic;         /* label holds $N/${VAR}: resolved per request */
    char *realm;               /* basicauth */
    char *creds;               /* "user:pass" or NULL (file or empty) */
    size_t creds_len, user_len;
    struct route_htpasswd *htpasswd;
};

struct route_table {
    struct route_rule *rules;
    size_t count, cap;
};

struct route_config {
    struct route_table chain[ROUTE_CHAINS];
    bool use_jit;
    bool no_files;             /* fuzzing: parse htpasswd paths, do not open */
};

/* Which chain and subject an option name stands for ("final-route-host");
 * false when it is not a route option. */
bool route_option_kind(const char *option, enum route_chain *chain,
                       enum route_subject *subject, bool *negate);
/* The route option names, NULL-terminated (for the plugin's option table
 * and for tests). */
extern const char *const route_option_names[];

void route_config_init(struct route_config *, bool use_jit);
/* Parse one line of option `option` (must outlive the config) and append
 * it to its chain.  On error returns -1 with a one-line message in err. */
int route_config_add(struct route_config *, const char *option, const char *value,
                     const char *origin, char *err, size_t errlen);
/* After the last add: resolve goto targets (forward only).  On error
 * returns -1, *bad points at the offending rule. */
int route_config_finish(struct route_config *, const struct route_rule **bad,
                        char *err, size_t errlen);
void route_config_free(struct route_config *);

/* Find a label of `chain` at or after rule index `from` (dynamic goto). */
bool route_find_label(const struct route_table *, const char *name, size_t len,
                      size_t from, size_t *index);

/* Evaluate a condition other than REGEXP on expanded operands. */
bool route_cond_eval(enum route_cond, const char *a, size_t alen, const char *b, size_t blen);
/* The name of a condition / action (for messages). */
const char *route_cond_name(enum route_cond);
const char *route_chain_prefix(enum route_chain);

/* ------------------------------------------------------------ helpers */

/* Percent-decode a rewritten path (as uWSGI's http_url_decode): %XX
 * becomes the byte, except %00 and malformed escapes which stay as they
 * are.  out has room for len + 1 bytes; returns the decoded length. */
size_t route_url_decode(const char *in, size_t len, char *out);
/* Percent-encode the bytes a Location value must not carry raw (controls,
 * space, DEL, non-ASCII).  Returns the length or -1 when cap is too small
 * (out is NUL-terminated). */
ssize_t route_location_encode(const char *in, size_t len, char *out, size_t cap);
/* Split "Name: value" (addheader).  False when the name is not an HTTP
 * token or the value holds a control character. */
bool route_header_split(const char *line, size_t len, const char **name, size_t *nlen,
                        const char **value, size_t *vlen);
/* Text for a log line: controls and non-ASCII as \xHH.  Returns the
 * length (truncated to fit, NUL-terminated). */
size_t route_log_escape(const char *in, size_t len, char *out, size_t cap);
/* A valid HTTP token (header name, var name). */
bool route_is_token(const char *s, size_t len);

#endif
