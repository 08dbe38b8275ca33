/* What every rank of a session must agree on before any file opens (issue 15
 * (e)): the build (git revision, compiler and build type, the real type),
 * the results schema, the experiment (a hash of every expanded run's
 * configuration), the options that steer the session, and the MPI library.
 * Ranks that differ would write different numbers into one file, or wait in
 * different collectives for ever. */
#ifndef CBNN_FINGERPRINT_H
#define CBNN_FINGERPRINT_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "dist.h"

typedef struct {
    int32_t status;          /* this rank's exit status so far: 0, or an error met before the check */
    int32_t real_size;       /* sizeof(real) */
    int32_t schema;          /* RESULTS_SCHEMA_VERSION */
    int32_t pad;
    uint64_t config_hash;    /* every run's name and expanded YAML, in grid order (0: not loaded) */
    uint64_t options_hash;   /* the command-line options that steer the session */
    uint64_t message_hash;   /* of the error message behind status (who repeats whom) */
    char revision[64];       /* CBNN_GIT_REV, or $CBNN_FAKE_REVISION (a test hook) */
    char compiler[64], build[64];
    char mpi[192];           /* dist_mpi_version() */
    char host[64];
} Fingerprint;

uint64_t fingerprint_hash(uint64_t h, const void *p, size_t n);   /* FNV-1a step; start from FINGERPRINT_SEED */
#define FINGERPRINT_SEED 0xcbf29ce484222325ULL

/* This rank's fingerprint: e may be NULL (the experiment did not load; then
 * status says why), options is the steering options as text. */
void fingerprint_make(Fingerprint *fp, const ExperimentConfig *e, const char *options, int status,
                      const char *message);

/* Gather every rank's fingerprint (dist_allgather on world) and compare.
 * Returns, the same on every rank: 0 when all agree; the status of the
 * lowest rank that had an error (*speak = 1 on the ranks that should print
 * their message: the lowest to have met each distinct one); or 2 when they
 * differ, after world rank 0 listed on msg each rank, its host and its
 * fields that differ from rank 0's. */
int fingerprint_agree(const DistComm *world, const Fingerprint *mine, FILE *msg, int *speak);

#endif
