/* The ranks' agreement before any file opens (fingerprint.h). */
#include "fingerprint.h"

#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "build_rev.h"
#include "real.h"
#include "results_h5.h"

uint64_t fingerprint_hash(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s) { return fingerprint_hash(h, s ? s : "", strlen(s ? s : "") + 1); }

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

void fingerprint_make(Fingerprint *fp, const ExperimentConfig *e, const char *options, int status,
                      const char *message) {
    memset(fp, 0, sizeof *fp); /* the padding too: the struct travels as bytes */
    fp->status = status;
    fp->real_size = (int32_t)sizeof(real);
    fp->schema = RESULTS_SCHEMA_VERSION;
    const char *fake = getenv("CBNN_FAKE_REVISION");
    copy(fp->revision, sizeof fp->revision, fake && *fake ? fake : CBNN_GIT_REV);
    copy(fp->compiler, sizeof fp->compiler, CBNN_COMPILER);
    copy(fp->build, sizeof fp->build, CBNN_BUILDTYPE);
    copy(fp->mpi, sizeof fp->mpi, dist_mpi_version());
    copy(fp->host, sizeof fp->host, dist_host());
    fp->options_hash = hash_str(FINGERPRINT_SEED, options);
    fp->message_hash = hash_str(FINGERPRINT_SEED, status ? message : "");
    if (e) {
        uint64_t h = hash_str(FINGERPRINT_SEED, e->name);
        for (int k = 0; k < e->n_runs; k++) {
            char *y = config_to_yaml(&e->runs[k].c);
            h = hash_str(hash_str(h, e->runs[k].name), y ? y : "?");
            free(y);
        }
        fp->config_hash = h;
    }
}

/* the fields of b that differ from a's, as "name 'b' (rank 0: 'a')" items */
static int describe_diff(const Fingerprint *a, const Fingerprint *b, char *out, size_t cap) {
    size_t n = 0;
    int nd = 0;
    out[0] = '\0';
#define STR_FIELD(f, label)                                                                                     \
    if (strcmp(a->f, b->f) != 0 && n < cap) {                                                                   \
        n += (size_t)snprintf(out + n, cap - n, "%s%s '%s' (rank 0: '%s')", nd++ ? ", " : "", label, b->f, a->f); \
    }
#define NUM_FIELD(f, label, fmt)                                                                                  \
    if (a->f != b->f && n < cap) {                                                                                \
        n += (size_t)snprintf(out + n, cap - n, "%s%s " fmt " (rank 0: " fmt ")", nd++ ? ", " : "", label, b->f, \
                              a->f);                                                                              \
    }
    STR_FIELD(revision, "git revision")
    STR_FIELD(compiler, "compiler")
    STR_FIELD(build, "build type")
    NUM_FIELD(real_size, "sizeof(real)", "%d")
    NUM_FIELD(schema, "results schema", "%d")
    if (a->config_hash != b->config_hash && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%sexperiment configuration hash %016llx (rank 0: %016llx)",
                              nd++ ? ", " : "", (unsigned long long)b->config_hash,
                              (unsigned long long)a->config_hash);
    if (a->options_hash != b->options_hash && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%scommand-line options", nd++ ? ", " : "");
    STR_FIELD(mpi, "MPI library")
#undef STR_FIELD
#undef NUM_FIELD
    return nd;
}

int fingerprint_agree(const DistComm *world, const Fingerprint *mine, FILE *msg, int *speak) {
    const int R = world->size;
    *speak = 0;
    Fingerprint *all = malloc(sizeof *all * (size_t)R);
    if (!all) {
        fprintf(stderr, "%s: out of memory comparing the ranks\n", dist_prefix());
        dist_abort(world, 1); /* the others are in the gather: they cannot be left waiting */
    }
    dist_allgather(world, mine, sizeof *mine, all);
    int rc = 0;
    for (int r = 0; r < R && !rc; r++) rc = all[r].status;
    /* an error is printed once: by the lowest rank that met it */
    if (mine->status) {
        *speak = 1;
        for (int r = 0; r < world->rank; r++)
            if (all[r].status == mine->status && all[r].message_hash == mine->message_hash) *speak = 0;
    }
    if (!rc) {
        char d[1024];
        int differ = 0;
        for (int r = 1; r < R; r++) differ += describe_diff(&all[0], &all[r], d, sizeof d) > 0;
        if (differ) {
            rc = 2;
            if (world->rank == 0 && msg) {
                fprintf(msg, "%s: the %d ranks do not run the same build on the same experiment; nothing was run "
                             "and no file was touched:\n", dist_prefix(), R);
                for (int r = 0; r < R; r++) {
                    const int nd = r ? describe_diff(&all[0], &all[r], d, sizeof d) : 0;
                    fprintf(msg, "  rank %d on %s: %s\n", r, all[r].host,
                            r == 0 ? "the reference" : nd ? d : "same as rank 0");
                }
                fprintf(msg, "%s: build once on a shared file system (or the same revision on every node) and "
                             "give every rank the same command\n", dist_prefix());
            }
        }
    }
    free(all);
    return rc;
}
