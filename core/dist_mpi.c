/* Open MPI's build of core/dist.h (issue 15); core/dist.c is the one-rank one.
 *
 * Every collective is built from nonblocking point-to-point messages that are
 * polled (MPI_Testsome, then a short sleep backoff) until the communicator's
 * stall timeout: MPI's own blocking collectives cannot time out, and they do
 * not say who is late. So that the late ranks can be named:
 *   - small collectives (barrier, allgather, max, any, star sums) are stars
 *     through rank 0, which posts one receive per rank and so knows exactly
 *     who has not arrived, then sends the result back;
 *   - the tree sums (and the integer sum) are recursive doubling between
 *     partners rank ^ 2^l: the partner one waits for is the late one;
 *   - bcast is point-to-point from the root.
 * Waits further from the culprit get a longer deadline (the non-roots of a
 * star, the later levels of the doubling), so the first rank to give up is
 * normally the one waiting on the late rank itself, and its message names it.
 *
 * Messages are tagged by collective kind and by a per-communicator sequence
 * number (every rank calls the collectives of a communicator in the same
 * order), so a stray message of an earlier collective never matches. Big
 * buffers go in chunks of CHUNK bytes (MPI counts are int; see wait_reqs). */
#include "dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOST_LEN 64
#define CHUNK ((size_t)1 << 20)    /* bytes per message: see wait_reqs */
#define SEQ_RANGE 2048             /* tags: kind * SEQ_RANGE + seq % SEQ_RANGE <= 32767 (MPI's least TAG_UB) */
#define STALL_EXIT 3

enum { K_BARRIER = 1, K_BCAST, K_ALLGATHER, K_MAX, K_SUM_I64, K_ANY, K_TREE };

/* What DistComm.comm points to. */
typedef struct {
    MPI_Comm comm;
    unsigned seq;        /* collectives started on this communicator */
    int *world_rank;     /* [size]: world rank of each rank, to name hosts */
    int is_world;        /* the session's: never freed by dist_comm_free */
    void *scratch;       /* the exchange buffer of the big collectives, kept: a */
    size_t scratch_bytes;/* fresh one per call costs page faults at every step */
} CommImpl;

static DistComm g_world = {.rank = 0, .size = 1, .comm = NULL, .stall_timeout_s = 600.0};
static CommImpl g_world_impl;
static char g_host[HOST_LEN];
static char (*g_hosts)[HOST_LEN];   /* [world size]: gathered once at dist_init */
static char g_prefix[HOST_LEN + 48] = "cyclebnn";
static char g_version[256];
static int g_inited;                /* the world communicator is set up */

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer only: Open MPI unloads its plugins (mca_*.so) at
 * MPI_Finalize, and LeakSanitizer, which runs after, then cannot name the
 * module of the allocations those plugins keep until exit by design, so
 * tests/lsan_mpi.supp cannot match them. Keeping every library loaded (this
 * definition takes the place of libc's for the whole process) lets it. */
int dlclose(void *handle);
int dlclose(void *handle) {
    (void)handle;
    return 0;
}
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mpi_live(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

static CommImpl *impl(const DistComm *c) { return (CommImpl *)c->comm; }
/* one rank, or not set up: every collective is the identity */
static int solo(const DistComm *c) { return !c || c->size <= 1 || !c->comm; }

static const char *host_of(const DistComm *c, int r) {
    const CommImpl *m = impl(c);
    if (!g_hosts || !m || !m->world_rank) return "?";
    return g_hosts[m->world_rank[r]];
}

/* ------------------------------------------------------------ setup */

/* Started by a launcher (mpirun, srun --mpi=pmix, a PMI-1/2 one)? A plain
 * `build/cyclebnn X.yaml` is not: it stays one rank without MPI, since a
 * singleton MPI_Init costs startup time, forks Open MPI's helpers and creates
 * shared-memory segments, which fails under `ulimit -f` or a full disk before
 * the suite can say so. CBNN_MPI_SINGLETON=1 starts MPI anyway. */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i]) && *getenv(vars[i])) return 1;
    const char *s = getenv("CBNN_MPI_SINGLETON");
    return s && !strcmp(s, "1");
}

int dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    if (g_inited) return 0;
    if (!launched_by_mpi()) {
        (void)dist_host();
        g_inited = 1;          /* one rank, no communicator: every collective is the identity */
        return 0;
    }
    int init = 0, fin = 0;
    MPI_Finalized(&fin);
    if (fin) {
        snprintf(err, errlen, "MPI was already finalized: dist_init cannot start it again");
        return -1;
    }
    MPI_Initialized(&init);
    if (!init) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            snprintf(err, errlen, "MPI_Init_thread failed");
            return -1;
        }
        /* below FUNNELED OpenMP threads beside MPI would be undefined; Open
         * MPI always provides it, so only say so */
        if (provided < MPI_THREAD_FUNNELED)
            fprintf(stderr, "cyclebnn: warning: MPI provides thread level %d < FUNNELED\n", provided);
    }
    MPI_Comm comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    if (gethostname(g_host, sizeof g_host - 1) != 0) strcpy(g_host, "?");
    g_host[sizeof g_host - 1] = '\0';
    g_hosts = calloc((size_t)size, sizeof *g_hosts);
    int *wr = malloc(sizeof(int) * (size_t)size);
    if (!g_hosts || !wr) {
        snprintf(err, errlen, "out of memory at dist_init");
        free(g_hosts), free(wr);
        g_hosts = NULL;
        return -1;
    }
    /* once, blocking: nothing can be late yet that a timeout would name */
    MPI_Allgather(g_host, HOST_LEN, MPI_CHAR, g_hosts, HOST_LEN, MPI_CHAR, comm);
    for (int r = 0; r < size; r++) wr[r] = r;
    g_world_impl = (CommImpl){.comm = comm, .seq = 0, .world_rank = wr, .is_world = 1};
    g_world.rank = rank;
    g_world.size = size;
    g_world.comm = &g_world_impl;
    if (size > 1) snprintf(g_prefix, sizeof g_prefix, "cyclebnn[%d/%d %s]", rank, size, g_host);
    g_inited = 1;
    return 0;
}

void dist_finalize(void) {
    if (!mpi_live()) {
        g_inited = 0;
        return;
    }
    if (g_inited) {
        MPI_Comm_free(&g_world_impl.comm);
        free(g_world_impl.world_rank);
        free(g_world_impl.scratch);
        free(g_hosts);
        g_hosts = NULL;
        g_world_impl = (CommImpl){0};
        g_world = (DistComm){.rank = 0, .size = 1, .comm = NULL, .stall_timeout_s = g_world.stall_timeout_s};
        strcpy(g_prefix, "cyclebnn");
        g_inited = 0;
    }
    MPI_Finalize();
}

int dist_built_with_mpi(void) { return 1; }

const char *dist_mpi_version(void) {
    if (!g_version[0]) {
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(v, &len);
        v[len < (int)sizeof v ? len : (int)sizeof v - 1] = '\0';
        size_t n = strcspn(v, "\r\n");
        if (n >= sizeof g_version) n = sizeof g_version - 1;
        memcpy(g_version, v, n);
        g_version[n] = '\0';
    }
    return g_version;
}

const DistComm *dist_world(void) { return &g_world; }
void dist_set_stall_timeout(double seconds) { g_world.stall_timeout_s = seconds; }

const char *dist_host(void) {
    if (!g_host[0] && gethostname(g_host, sizeof g_host - 1) != 0) strcpy(g_host, "?");
    return g_host;
}
const char *dist_prefix(void) { return g_prefix; }

int dist_split(const DistComm *parent, int color, int key, DistComm *out, char *err, size_t errlen) {
    if (solo(parent)) {   /* one rank (or before dist_init): a group of one */
        *out = (DistComm){.rank = 0, .size = 1, .comm = NULL,
                          .stall_timeout_s = parent ? parent->stall_timeout_s : g_world.stall_timeout_s};
        return 0;
    }
    CommImpl *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory splitting the ranks");
        return -1;
    }
    if (MPI_Comm_split(impl(parent)->comm, color, key, &m->comm) != MPI_SUCCESS) {
        snprintf(err, errlen, "MPI_Comm_split failed (color %d, key %d)", color, key);
        free(m);
        return -1;
    }
    int rank, size;
    MPI_Comm_rank(m->comm, &rank);
    MPI_Comm_size(m->comm, &size);
    m->world_rank = malloc(sizeof(int) * (size_t)size);
    int *mine = malloc(sizeof(int) * (size_t)size);
    if (!m->world_rank || !mine) {
        snprintf(err, errlen, "out of memory splitting the ranks");
        MPI_Comm_free(&m->comm);
        free(m->world_rank), free(mine), free(m);
        return -1;
    }
    /* world ranks of the members, so a stall message can name their hosts */
    MPI_Group g, gw;
    MPI_Comm_group(m->comm, &g);
    MPI_Comm_group(g_world_impl.comm, &gw);
    for (int r = 0; r < size; r++) mine[r] = r;
    MPI_Group_translate_ranks(g, size, mine, gw, m->world_rank);
    MPI_Group_free(&g);
    MPI_Group_free(&gw);
    free(mine);
    *out = (DistComm){.rank = rank, .size = size, .comm = m, .stall_timeout_s = parent->stall_timeout_s};
    return 0;
}

void dist_comm_free(DistComm *c) {
    if (!c) return;
    CommImpl *m = impl(c);
    if (m && m->is_world) return;   /* the session's own: dist_finalize frees it */
    if (m) {
        if (mpi_live()) MPI_Comm_free(&m->comm);
        free(m->world_rank);
        free(m->scratch);
        free(m);
    }
    *c = (DistComm){.rank = 0, .size = 1, .comm = NULL, .stall_timeout_s = c->stall_timeout_s};
}

void dist_abort(const DistComm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    if (mpi_live()) MPI_Abort(c && c->comm ? impl(c)->comm : MPI_COMM_WORLD, code);
    exit(code);
}

/* ---------------------------------------------------- requests and waits */

static void *alloc_or_abort(const DistComm *c, size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "%s: out of memory (%zu bytes) in %s; aborting\n", g_prefix, bytes, what);
        fflush(stderr);
        MPI_Abort(impl(c)->comm, STALL_EXIT);
    }
    return p;
}

/* the communicator's scratch of at least `bytes` (FUNNELED: one thread calls) */
static void *scratch(const DistComm *c, size_t bytes, const char *what) {
    CommImpl *m = impl(c);
    if (m->scratch_bytes < bytes) {
        free(m->scratch);
        m->scratch = alloc_or_abort(c, bytes, what);
        m->scratch_bytes = bytes;
    }
    return m->scratch;
}


/* The requests of one collective, each with the rank at its other end. */
typedef struct {
    MPI_Request *r;
    int *peer;
    int *idx;   /* MPI_Testsome's output */
    int n, cap;
} Reqs;

static void reqs_push(Reqs *q, MPI_Request r, int peer) {
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 16;
        MPI_Request *nr = realloc(q->r, sizeof *nr * (size_t)cap);
        if (nr) q->r = nr;
        int *np = realloc(q->peer, sizeof *np * (size_t)cap);
        if (np) q->peer = np;
        int *ni = realloc(q->idx, sizeof *ni * (size_t)cap);
        if (ni) q->idx = ni;
        if (!nr || !np || !ni) {
            fprintf(stderr, "%s: out of memory posting messages; aborting\n", g_prefix);
            MPI_Abort(MPI_COMM_WORLD, STALL_EXIT);
        }
        q->cap = cap;
    }
    q->r[q->n] = r;
    q->peer[q->n++] = peer;
}

static void reqs_free(Reqs *q) {
    free(q->r);
    free(q->peer);
    free(q->idx);
    *q = (Reqs){0};
}

/* bytes from/to peer as messages of at most CHUNK bytes (same tag: messages
 * between a pair do not overtake each other, so chunks match in order) */
static void post_recv(const DistComm *c, Reqs *q, void *buf, size_t bytes, int peer, int tag) {
    char *p = buf;
    size_t off = 0;
    do {
        const size_t len = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_Request r;
        MPI_Irecv(p + off, (int)len, MPI_BYTE, peer, tag, impl(c)->comm, &r);
        reqs_push(q, r, peer);
        off += len;
    } while (off < bytes);
}

static void post_send(const DistComm *c, Reqs *q, const void *buf, size_t bytes, int peer, int tag) {
    const char *p = buf;
    size_t off = 0;
    do {
        const size_t len = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_Request r;
        MPI_Isend(p + off, (int)len, MPI_BYTE, peer, tag, impl(c)->comm, &r);
        reqs_push(q, r, peer);
        off += len;
    } while (off < bytes);
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* The deadline has passed: name the ranks at the other end of every request
 * still open, and end the job. */
static void stall(const DistComm *c, const char *what, Reqs *q) {
    int *late = malloc(sizeof(int) * (size_t)(q->n ? q->n : 1)), nl = 0;
    for (int i = 0; i < q->n; i++) {
        int done = 1;
        if (q->r[i] != MPI_REQUEST_NULL) MPI_Test(&q->r[i], &done, MPI_STATUS_IGNORE);
        if (!done && late) late[nl++] = q->peer[i];
    }
    char list[1024] = "";
    size_t len = 0;
    if (late) {
        qsort(late, (size_t)nl, sizeof *late, cmp_int);
        for (int i = 0; i < nl && len < sizeof list - 128; i++) {
            if (i && late[i] == late[i - 1]) continue;
            const int r = late[i], w = impl(c)->world_rank ? impl(c)->world_rank[r] : r;
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d (", len ? ", " : "", r);
            if (!impl(c)->is_world) len += (size_t)snprintf(list + len, sizeof list - len, "world rank %d, ", w);
            len += (size_t)snprintf(list + len, sizeof list - len, "host %s)", host_of(c, r));
        }
    }
    fprintf(stderr, "%s: %s waited more than %g s for rank(s) %s; aborting\n", g_prefix, what, c->stall_timeout_s,
            len ? list : "?");
    fflush(stderr);
    free(late);
    MPI_Abort(impl(c)->comm, STALL_EXIT);
    exit(STALL_EXIT);   /* not reached */
}

/* Complete every request of q, or abort once `scale` stall timeouts have
 * passed since t0 (the collective's start). While messages complete, poll
 * without sleeping: Open MPI moves a large message only when both ends call
 * into it (shared-memory fragments, rendezvous), so a sleeping rank would
 * stall the transfer; hence chunks of CHUNK bytes, whose completions tell
 * that data is flowing. After SPIN_S without a completion the rank is
 * waiting for a partner that is still computing: sleeps that grow to 1 ms
 * leave the cores to the ranks (and OpenMP threads) that compute. */
#define SPIN_S 2e-3
static void wait_reqs(const DistComm *c, const char *what, Reqs *q, double t0, double scale) {
    if (q->n == 0) return;
    const double T = c->stall_timeout_s;
    if (!(T > 0)) {
        MPI_Waitall(q->n, q->r, MPI_STATUSES_IGNORE);
        q->n = 0;
        return;
    }
    const double deadline = t0 + T * scale;
    double spin_until = now_s() + SPIN_S;
    long nap_ns = 0;
    for (;;) {
        int done = 0;
        MPI_Testsome(q->n, q->r, &done, q->idx, MPI_STATUSES_IGNORE);
        if (done == MPI_UNDEFINED) break;   /* none left active */
        const double t = now_s();
        if (done > 0) {
            spin_until = t + SPIN_S;
            nap_ns = 0;
        }
        if (t > deadline) stall(c, what, q);
        if (t > spin_until) {
            nap_ns = nap_ns ? (nap_ns * 2 < 1000000 ? nap_ns * 2 : 1000000) : 10000;
            nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = nap_ns}, NULL);
        }
    }
    q->n = 0;
}

/* the tag of this collective; every rank counts the same collectives */
static int next_tag(const DistComm *c, int kind) {
    CommImpl *m = impl(c);
    const int tag = kind * SEQ_RANGE + (int)(m->seq % SEQ_RANGE);
    m->seq++;
    return tag;
}

/* A star through rank 0: every rank sends `bytes` of `mine`; rank 0 gets them
 * in all[size * bytes] (rank order) and, after `combine` made `out_bytes` of
 * result in `out` (rank 0 only), sends that back to every rank. */
typedef void (*StarCombine)(const DistComm *c, const void *all, size_t bytes, void *out, void *ctx);

static void star(const DistComm *c, const char *what, int kind, const void *mine, size_t bytes, void *out,
                 size_t out_bytes, StarCombine combine, void *ctx) {
    const double t0 = now_s();
    const int tag = next_tag(c, kind);
    Reqs q = {0};
    if (c->rank == 0) {
        char *all = alloc_or_abort(c, bytes * (size_t)c->size, what);
        if (bytes) memcpy(all, mine, bytes);
        for (int r = 1; r < c->size; r++) post_recv(c, &q, all + (size_t)r * bytes, bytes, r, tag);
        wait_reqs(c, what, &q, t0, 1.0);
        combine(c, all, bytes, out, ctx);
        free(all);
        for (int r = 1; r < c->size; r++) post_send(c, &q, out, out_bytes, r, tag);
        wait_reqs(c, what, &q, t0, 1.0);
    } else {
        /* wait longer than rank 0 does: when another rank is late, rank 0 names it */
        post_send(c, &q, mine, bytes, 0, tag);
        post_recv(c, &q, out, out_bytes, 0, tag);
        wait_reqs(c, what, &q, t0, 1.25);
    }
    reqs_free(&q);
}

/* ------------------------------------------------------------ exact */

static void combine_none(const DistComm *c, const void *all, size_t bytes, void *out, void *ctx) {
    (void)c, (void)all, (void)bytes, (void)out, (void)ctx;
}

void dist_barrier(const DistComm *c) {
    if (solo(c)) return;
    char dummy = 0;
    star(c, "dist_barrier", K_BARRIER, &dummy, 0, &dummy, 0, combine_none, NULL);
}

void dist_bcast(const DistComm *c, void *buf, size_t bytes, int root) {
    if (solo(c)) return;
    if (root < 0 || root >= c->size) {
        fprintf(stderr, "%s: dist_bcast from rank %d of %d; aborting\n", g_prefix, root, c->size);
        MPI_Abort(impl(c)->comm, 2);
    }
    const double t0 = now_s();
    const int tag = next_tag(c, K_BCAST);
    Reqs q = {0};
    if (c->rank == root) {
        for (int r = 0; r < c->size; r++)
            if (r != root) post_send(c, &q, buf, bytes, r, tag);
        wait_reqs(c, "dist_bcast", &q, t0, 1.0);
    } else {
        post_recv(c, &q, buf, bytes, root, tag);
        wait_reqs(c, "dist_bcast", &q, t0, 1.25);
    }
    reqs_free(&q);
}

static void combine_gather(const DistComm *c, const void *all, size_t bytes, void *out, void *ctx) {
    (void)ctx;
    if (bytes) memcpy(out, all, bytes * (size_t)c->size);
}

void dist_allgather(const DistComm *c, const void *mine, size_t bytes, void *all) {
    if (solo(c)) {
        if (bytes) memmove(all, mine, bytes);
        return;
    }
    /* `mine` may lie inside `all`: send a copy */
    void *copy = alloc_or_abort(c, bytes, "dist_allgather");
    if (bytes) memcpy(copy, mine, bytes);
    star(c, "dist_allgather", K_ALLGATHER, copy, bytes, all, bytes * (size_t)c->size, combine_gather, NULL);
    free(copy);
}

/* dist.h's rule, in rank order: b replaces a when b > a, or when a is NaN */
static void combine_max(const DistComm *c, const void *all, size_t bytes, void *out, void *ctx) {
    (void)ctx;
    const size_t n = bytes / sizeof(double);
    const double *v = all;
    double *o = out;
    for (size_t i = 0; i < n; i++) {
        double a = v[i];
        for (int r = 1; r < c->size; r++) {
            const double b = v[(size_t)r * n + i];
            if (b > a || a != a) a = b;
        }
        o[i] = a;
    }
}

void dist_max_d(const DistComm *c, double *v, size_t n) {
    if (solo(c) || n == 0) return;
    double *mine = alloc_or_abort(c, sizeof(double) * n, "dist_max_d");
    memcpy(mine, v, sizeof(double) * n);
    star(c, "dist_max_d", K_MAX, mine, sizeof(double) * n, v, sizeof(double) * n, combine_max, NULL);
    free(mine);
}

static void combine_any(const DistComm *c, const void *all, size_t bytes, void *out, void *ctx) {
    (void)bytes, (void)ctx;
    const int *f = all;
    int any = 0;
    for (int r = 0; r < c->size; r++) any |= f[r] != 0;
    *(int *)out = any;
}

int dist_any(const DistComm *c, int flag) {
    if (solo(c)) return flag != 0;
    int mine = flag != 0, any = 0;
    star(c, "dist_any", K_ANY, &mine, sizeof mine, &any, sizeof any, combine_any, NULL);
    return any;
}

/* integer sums wrap (unsigned arithmetic): exact whenever the true sum fits,
 * and the same bits in any order even when it does not */
static void add_i64(int64_t *a, const int64_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (int64_t)((uint64_t)a[i] + (uint64_t)b[i]);
}

static void combine_sum_i64(const DistComm *c, const void *all, size_t bytes, void *out, void *ctx) {
    (void)ctx;
    const size_t n = bytes / sizeof(int64_t);
    memcpy(out, all, bytes);
    for (int r = 1; r < c->size; r++) add_i64(out, (const int64_t *)all + (size_t)r * n, n);
}

static int is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

/* Recursive doubling over a power-of-two communicator: at level l exchange v
 * with rank ^ 2^l (into tmp) and let add(v, tmp, lower_is_mine) combine. A
 * later level waits longer: its partner may itself be waiting on the late
 * rank of an earlier level, which should be named first. */
typedef void (*LevelAdd)(void *v, const void *tmp, size_t n, int mine_is_lower);

static void doubling(const DistComm *c, const char *what, int kind, void *v, void *tmp, size_t n, size_t elem,
                     LevelAdd add) {
    const double t0 = now_s();
    const int tag = next_tag(c, kind);
    Reqs q = {0};
    for (int l = 0; (1 << l) < c->size; l++) {
        const int partner = c->rank ^ (1 << l);
        post_recv(c, &q, tmp, n * elem, partner, tag);
        post_send(c, &q, v, n * elem, partner, tag);
        wait_reqs(c, what, &q, t0, 1.0 + 0.25 * l);
        add(v, tmp, n, c->rank < partner);
    }
    reqs_free(&q);
}

static void level_add_i64(void *v, const void *tmp, size_t n, int mine_is_lower) {
    (void)mine_is_lower;
    add_i64(v, tmp, n);
}

void dist_sum_i64(const DistComm *c, int64_t *v, size_t n) {
    if (solo(c) || n == 0) return;
    if (is_pow2(c->size)) {
        int64_t *tmp = scratch(c, sizeof(int64_t) * n, "dist_sum_i64");
        doubling(c, "dist_sum_i64", K_SUM_I64, v, tmp, n, sizeof(int64_t), level_add_i64);
        return;
    }
    /* any other size: a star through rank 0 */
    int64_t *mine = alloc_or_abort(c, sizeof(int64_t) * n, "dist_sum_i64");
    memcpy(mine, v, sizeof(int64_t) * n);
    star(c, "dist_sum_i64", K_SUM_I64, mine, sizeof(int64_t) * n, v, sizeof(int64_t) * n, combine_sum_i64, NULL);
    free(mine);
}

/* ---------------------------------------------------------- the fixed tree */

/* lower + upper, the same expression on both partners: identical bits on
 * every rank, and the node of shard_tree_local_*'s tree */
static void level_add_d(void *v_, const void *tmp_, size_t n, int mine_is_lower) {
    double *v = v_;
    const double *t = tmp_;
    if (mine_is_lower)
        for (size_t i = 0; i < n; i++) v[i] = v[i] + t[i];
    else
        for (size_t i = 0; i < n; i++) v[i] = t[i] + v[i];
}

static void level_add_r(void *v_, const void *tmp_, size_t n, int mine_is_lower) {
    real *v = v_;
    const real *t = tmp_;
    if (mine_is_lower)
        for (size_t i = 0; i < n; i++) v[i] = v[i] + t[i];
    else
        for (size_t i = 0; i < n; i++) v[i] = t[i] + v[i];
}

static void need_pow2(const DistComm *c, const char *what) {
    if (is_pow2(c->size)) return;
    fprintf(stderr, "%s: %s over %d ranks: the fixed tree needs a power of two (train.shards / ranks); aborting\n",
            g_prefix, what, c->size);
    fflush(stderr);
    MPI_Abort(impl(c)->comm, 2);
}

void dist_tree_sum_d(const DistComm *c, double *v, size_t n, double *tmp) {
    if (solo(c) || n == 0) return;
    need_pow2(c, "dist_tree_sum_d");
    if (!tmp) tmp = scratch(c, sizeof(double) * n, "dist_tree_sum_d");
    doubling(c, "dist_tree_sum_d", K_TREE, v, tmp, n, sizeof(double), level_add_d);
}

void dist_tree_sum_r(const DistComm *c, real *v, size_t n, real *tmp) {
    if (solo(c) || n == 0) return;
    need_pow2(c, "dist_tree_sum_r");
    if (!tmp) tmp = scratch(c, sizeof(real) * n, "dist_tree_sum_r");
    doubling(c, "dist_tree_sum_r", K_TREE, v, tmp, n, sizeof(real), level_add_r);
}
