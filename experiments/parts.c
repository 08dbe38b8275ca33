/* Part files of a grid over ranks: names, listing, merging (parts.h). */
#include "parts.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PART_NAME_MAX 200   /* under every file system's 255, with room for .tmp/.commit/.lock */

int parts_dir(const char *results_path, char *out, size_t cap) {
    size_t n = strlen(results_path);
    if (n > 3 && !strcmp(results_path + n - 3, ".h5")) n -= 3;
    const int w = snprintf(out, cap, "%.*s.parts", (int)n, results_path);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

static int kept_byte(unsigned char c, int first) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    if (c == '.') return !first; /* no hidden files, no "." or ".." */
    return c && strchr(",=+_-", c) != NULL;
}

int part_file_name(const char *run_name, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    char enc[PART_NAME_MAX + 4];
    size_t n = 0;
    int cut = 0;
    for (const unsigned char *p = (const unsigned char *)run_name; *p; p++) {
        const size_t need = kept_byte(*p, p == (const unsigned char *)run_name) ? 1 : 3;
        if (n + need > PART_NAME_MAX - 17) { /* room for "~" + 16 hex digits */
            cut = 1;
            break;
        }
        if (need == 1) enc[n++] = (char)*p;
        else enc[n++] = '%', enc[n++] = hex[*p >> 4], enc[n++] = hex[*p & 15];
    }
    if (cut) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const unsigned char *p = (const unsigned char *)run_name; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
        enc[n++] = '~';
        for (int i = 15; i >= 0; i--) enc[n++] = hex[(h >> (4 * i)) & 15];
    }
    enc[n] = '\0';
    const int w = snprintf(out, cap, "%s.h5", enc);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int part_name_decode(const char *file_name, char *out, size_t cap) {
    size_t len = strlen(file_name), n = 0;
    if (len < 4 || strcmp(file_name + len - 3, ".h5") != 0 || !cap) return -1;
    len -= 3;
    for (size_t i = 0; i < len; i++) {
        char c = file_name[i];
        if (c == '%') {
            if (i + 2 >= len) return -1;
            const int hi = hexval(file_name[i + 1]), lo = hexval(file_name[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (!kept_byte((unsigned char)c, i == 0)) {
            return -1; /* '~' (a cut name) or a byte part_file_name never writes */
        }
        if (n + 1 >= cap) return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

int part_path(const char *results_path, const char *run_name, char *out, size_t cap) {
    char dir[1024], name[PART_NAME_MAX + 8];
    if (parts_dir(results_path, dir, sizeof dir) || part_file_name(run_name, name, sizeof name)) return -1;
    const int w = snprintf(out, cap, "%s/%s", dir, name);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void parts_list_free(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

int parts_list(const char *dir, char ***paths, int *n, char *err, size_t errlen) {
    *paths = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot list %s: %s", dir, strerror(errno));
        return -1;
    }
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".h5") != 0 || de->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **p = realloc(*paths, sizeof *p * (size_t)cap);
            if (!p) goto oom;
            *paths = p;
        }
        const size_t need = strlen(dir) + len + 2;
        if (!((*paths)[*n] = malloc(need))) goto oom;
        snprintf((*paths)[*n], need, "%s/%s", dir, de->d_name);
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*paths, (size_t)*n, sizeof **paths, cmp_str); /* merge order does not depend on readdir's */
    return 0;
oom:
    closedir(d);
    parts_list_free(*paths, *n);
    *paths = NULL;
    *n = 0;
    snprintf(err, errlen, "out of memory listing %s", dir);
    return -1;
}

int parts_merge_all(ResultsFile *f, const char *results_path, FILE *msg, const char *prefix, int *merged, char *err,
                    size_t errlen) {
    char dir[1024];
    char **paths;
    int n, rc = 0;
    if (merged) *merged = 0;
    if (parts_dir(results_path, dir, sizeof dir)) return snprintf(err, errlen, "path too long: %s", results_path), -1;
    if (parts_list(dir, &paths, &n, err, errlen)) return -1;
    for (int i = 0; i < n && !rc; i++) {
        PartMerge pm;
        char why[2048] = "";
        if (results_merge_part(f, paths[i], &pm, why, sizeof why)) {
            snprintf(err, errlen, "merging %s: %s", paths[i], why);
            rc = -1;
            break;
        }
        switch (pm.outcome) {
        case PART_MERGED:
            if (merged) (*merged)++;
            if (msg) fprintf(msg, "%s: run %s merged into %s\n", prefix, pm.run, results_path);
            break;
        case PART_SAME:
            if (msg) fprintf(msg, "%s: run %s was merged already; its leftover part %s is removed\n", prefix, pm.run,
                             paths[i]);
            break;
        case PART_DIFFERS:
            if (msg)
                fprintf(msg, "%s: warning: run %s is complete in %s and its part %s holds another result: the "
                             "part is kept (look at both, then remove one)\n", prefix, pm.run, results_path, paths[i]);
            break;
        case PART_OTHER_CONFIG:
            if (msg)
                fprintf(msg, "%s: warning: %s declares run %s with another configuration than its part %s: the "
                             "part is kept\n", prefix, results_path, pm.run, paths[i]);
            break;
        case PART_UNREADABLE:
            if (msg) fprintf(msg, "%s: warning: %s\n", prefix, why);
            break;
        default: break; /* busy (training), not complete yet, or merged by another session: later */
        }
    }
    parts_list_free(paths, n);
    rmdir(dir); /* only succeeds once empty: nothing left to merge */
    return rc;
}
