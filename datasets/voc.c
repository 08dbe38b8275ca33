/* PASCAL VOC detection data: split files, XML annotations (libxml2), JPEG
 * images (jpeg_io), resizing / flipping / normalisation. See voc.h for the
 * coordinate conventions.
 *
 * Everything read is validated before it is trusted, and every error names
 * the file: a broken annotation must fail at open (or be skipped and counted
 * with skip_bad), not become a wrong box during training. The XML parser is
 * also the fuzzers' target (voc_parse_annotation_mem): no network, no DTD,
 * no entity substitution, text read only from direct text children. */
#include "voc.h"
#include "dataset.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "jpeg_io.h"

const char *const VOC_CLASSES[VOC_NUM_CLASSES] = {
    "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",   "car",   "cat",   "chair", "cow",
    "diningtable", "dog",   "horse", "motorbike",   "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};

const float VOC_MEAN[3] = {0.485f, 0.456f, 0.406f};
const float VOC_STD[3] = {0.229f, 0.224f, 0.225f};

const char *const VOC_ERR_NAMES[VOC_ERR_COUNT] = {"ok", "malformed annotation", "bad box", "unknown class",
                                                 "missing image", "missing or unreadable annotation"};

/* an annotation file larger than this is not a VOC annotation (the largest
 * real ones are a few kB) */
#define VOC_MAX_XML_BYTES (16L << 20)


int voc_class_index(const char *name) {
    if (!name) return -1;
    while (*name && isspace((unsigned char)*name)) name++;
    size_t len = strlen(name);
    while (len > 0 && isspace((unsigned char)name[len - 1])) len--;
    for (int c = 0; c < VOC_NUM_CLASSES; c++)
        if (strlen(VOC_CLASSES[c]) == len && strncasecmp(VOC_CLASSES[c], name, len) == 0) return c;
    return -1;
}

/* ---- XML ---- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

static int is_elem(const xmlNode *n, const char *name) {
    return n && n->type == XML_ELEMENT_NODE && n->name && strcmp((const char *)n->name, name) == 0;
}

/* the first direct child element called name */
static xmlNode *child(const xmlNode *parent, const char *name) {
    for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
        if (is_elem(c, name)) return c;
    return NULL;
}

/* The node's direct text (text and CDATA children only: entity references
 * are never expanded), blanks trimmed, into buf. Returns 0, or -1 when it
 * does not fit or the element has child elements. */
static int node_text(const xmlNode *n, char *buf, size_t buflen) {
    size_t len = 0;
    buf[0] = '\0';
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE || c->type == XML_ENTITY_REF_NODE) return -1;
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) continue; /* comments, PIs */
        const char *t = (const char *)c->content;
        size_t tl = t ? strlen(t) : 0;
        if (len + tl + 1 > buflen) return -1;
        memcpy(buf + len, t, tl);
        len += tl;
        buf[len] = '\0';
    }
    char *s = buf;
    while (*s && isspace((unsigned char)*s)) s++;
    size_t sl = strlen(s);
    while (sl > 0 && isspace((unsigned char)s[sl - 1])) sl--;
    memmove(buf, s, sl);
    buf[sl] = '\0';
    return 0;
}

/* a finite number filling the whole text */
static int parse_num(const char *s, double *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d)) return -1;
    *v = d;
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

/* <parent><tag>integer</tag></parent> */
static int int_field(const xmlNode *parent, const char *tag, long lo, long hi, long *v, int *present) {
    xmlNode *n = child(parent, tag);
    if (present) *present = n != NULL;
    if (!n) return present ? 0 : -1;
    char t[64];
    if (node_text(n, t, sizeof t) != 0) return -1;
    return parse_int(t, lo, hi, v);
}

void voc_annotation_free(VocAnnotation *a) {
    if (!a) return;
    free(a->obj);
    memset(a, 0, sizeof *a);
}

#define FAIL(k, ...)                                    \
    do {                                                \
        if (kind) *kind = (k);                          \
        dataset_errf(err, errlen, __VA_ARGS__);              \
        goto fail;                                      \
    } while (0)

int voc_parse_annotation_mem(const char *buf, size_t len, const char *name, int keep_difficult,
                             VocAnnotation *out, VocErr *kind, char *err, size_t errlen) {
    if (kind) *kind = VOC_OK;
    if (!name) name = "<memory>";
    if (!out) {
        dataset_errf(err, errlen, "voc: %s: no output annotation", name);
        if (kind) *kind = VOC_ERR_IO;
        return -1;
    }
    memset(out, 0, sizeof *out);
    pthread_once(&xml_once, xml_init);

    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr doc = NULL;
    int cap = 0;
    if (!buf) FAIL(VOC_ERR_XML, "voc: %s: malformed annotation: no data", name);
    if (len == 0) FAIL(VOC_ERR_XML, "voc: %s: malformed annotation: empty file", name);
    if (len > (size_t)VOC_MAX_XML_BYTES)
        FAIL(VOC_ERR_XML, "voc: %s: malformed annotation: %zu bytes, too large for a VOC annotation", name, len);

    ctxt = xmlNewParserCtxt();
    if (!ctxt) FAIL(VOC_ERR_IO, "voc: %s: out of memory for the XML parser", name);
    doc = xmlCtxtReadMemory(ctxt, buf, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    if (!doc || !ctxt->wellFormed) {
        xmlErrorPtr e = xmlCtxtGetLastError(ctxt);
        char msg[256] = "not well-formed XML";
        if (e && e->message) {
            snprintf(msg, sizeof msg, "%s", e->message);
            size_t ml = strlen(msg);
            while (ml > 0 && (msg[ml - 1] == '\n' || msg[ml - 1] == ' ')) msg[--ml] = '\0';
        }
        FAIL(VOC_ERR_XML, "voc: %s: malformed XML (line %d): %s", name, e ? e->line : 0, msg);
    }
    if (doc->intSubset || doc->extSubset)
        FAIL(VOC_ERR_XML, "voc: %s: malformed annotation: a DOCTYPE is not allowed in a VOC annotation", name);
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "annotation"))
        FAIL(VOC_ERR_XML, "voc: %s: malformed annotation: root element <%s>, expected <annotation>", name,
             root && root->name ? (const char *)root->name : "?");

    xmlNode *size = child(root, "size");
    if (!size) FAIL(VOC_ERR_XML, "voc: %s: malformed annotation: no <size>", name);
    long w, h, d = 0;
    int has_depth = 0;
    if (int_field(size, "width", 1, 65535, &w, NULL) != 0)
        FAIL(VOC_ERR_XML, "voc: %s: malformed annotation (line %ld): <size><width> missing or not an integer in 1..65535",
             name, xmlGetLineNo(size));
    if (int_field(size, "height", 1, 65535, &h, NULL) != 0)
        FAIL(VOC_ERR_XML, "voc: %s: malformed annotation (line %ld): <size><height> missing or not an integer in 1..65535",
             name, xmlGetLineNo(size));
    if (int_field(size, "depth", 0, 4, &d, &has_depth) != 0)
        FAIL(VOC_ERR_XML, "voc: %s: malformed annotation (line %ld): <size><depth> not an integer in 0..4", name,
             xmlGetLineNo(size));
    out->width = (int)w, out->height = (int)h, out->depth = has_depth ? (int)d : 0;

    int total = 0;
    for (xmlNode *o = root->children; o; o = o->next) {
        if (!is_elem(o, "object")) continue;
        long line = xmlGetLineNo(o);
        if (++total > VOC_MAX_OBJECTS)
            FAIL(VOC_ERR_XML, "voc: %s: malformed annotation: more than %d objects", name, VOC_MAX_OBJECTS);
        xmlNode *nm = child(o, "name");
        char cname[64];
        if (!nm) FAIL(VOC_ERR_XML, "voc: %s: malformed annotation (line %ld): <object> without <name>", name, line);
        if (node_text(nm, cname, sizeof cname) != 0)
            FAIL(VOC_ERR_CLASS, "voc: %s: unknown class (line %ld): <name> is not a VOC class name", name, line);
        int label = voc_class_index(cname);
        if (label < 0) {
            char shown[40];
            size_t k = 0;
            for (const char *p = cname; *p && k + 1 < sizeof shown; p++)
                shown[k++] = isprint((unsigned char)*p) ? *p : '?';
            shown[k] = '\0';
            FAIL(VOC_ERR_CLASS, "voc: %s: unknown class \"%s\" (line %ld; not one of the 20 VOC classes)", name,
                 shown, line);
        }
        long diff = 0;
        int has_diff = 0;
        if (int_field(o, "difficult", 0, 1, &diff, &has_diff) != 0)
            FAIL(VOC_ERR_XML, "voc: %s: malformed annotation (line %ld): <difficult> is not 0 or 1", name, line);
        xmlNode *bb = child(o, "bndbox");
        if (!bb) FAIL(VOC_ERR_XML, "voc: %s: malformed annotation (line %ld): <object> without <bndbox>", name, line);
        static const char *const tags[4] = {"xmin", "ymin", "xmax", "ymax"};
        double v[4];
        for (int k = 0; k < 4; k++) {
            xmlNode *c = child(bb, tags[k]);
            char t[64];
            if (!c || node_text(c, t, sizeof t) != 0 || parse_num(t, &v[k]) != 0)
                FAIL(VOC_ERR_XML, "voc: %s: malformed annotation (line %ld): <bndbox><%s> missing or not a number",
                     name, line, tags[k]);
        }
        if (!(v[0] >= 1 && v[2] <= (double)w && v[1] >= 1 && v[3] <= (double)h))
            FAIL(VOC_ERR_BOX,
                 "voc: %s: box outside the image (line %ld): %s (%g, %g, %g, %g) in a %ldx%ld image "
                 "(VOC boxes are 1-based: 1 <= x <= width)",
                 name, line, VOC_CLASSES[label], v[0], v[1], v[2], v[3], w, h);
        if (!(v[0] < v[2] && v[1] < v[3]))
            FAIL(VOC_ERR_BOX, "voc: %s: empty box (line %ld): %s (%g, %g, %g, %g) needs xmin < xmax and ymin < ymax",
                 name, line, VOC_CLASSES[label], v[0], v[1], v[2], v[3]);
        if (diff && !keep_difficult) continue;
        if (out->n == cap) {
            int nc = cap ? 2 * cap : 8;
            VocObject *no = realloc(out->obj, (size_t)nc * sizeof *no);
            if (!no) FAIL(VOC_ERR_IO, "voc: %s: out of memory", name);
            out->obj = no, cap = nc;
        }
        VocObject *ob = &out->obj[out->n++];
        ob->label = label;
        ob->difficult = (int)diff;
        ob->xmin = (float)v[0], ob->ymin = (float)v[1], ob->xmax = (float)v[2], ob->ymax = (float)v[3];
    }
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return 0;
fail:
    if (doc) xmlFreeDoc(doc);
    if (ctxt) xmlFreeParserCtxt(ctxt);
    voc_annotation_free(out);
    return -1;
}

/* Read a whole (small) file. Returns 0, or -1 (+err; *missing = 1 if it does not exist). */
static int read_small_file(const char *path, long maxbytes, char **buf, size_t *len, int *missing, char *err,
                           size_t errlen) {
    *buf = NULL, *len = 0;
    if (missing) *missing = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (missing) *missing = errno == ENOENT;
        dataset_errf(err, errlen, "voc: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        if (n == cap) {
            if ((long)cap >= maxbytes) {
                dataset_errf(err, errlen, "voc: %s: larger than %ld bytes", path, maxbytes);
                goto fail;
            }
            char *nb = realloc(b, 2 * cap + 1);
            if (!nb) break;
            b = nb, cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp)) {
                dataset_errf(err, errlen, "voc: %s: read error: %s", path, strerror(errno));
                goto fail;
            }
            break;
        }
    }
    if (!b) {
        dataset_errf(err, errlen, "voc: %s: out of memory", path);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    b[n] = '\0';
    *buf = b, *len = n;
    return 0;
fail:
    free(b);
    fclose(fp);
    return -1;
}

int voc_parse_annotation_file(const char *path, int keep_difficult, VocAnnotation *out, VocErr *kind,
                              char *err, size_t errlen) {
    char *buf;
    size_t len;
    if (out) memset(out, 0, sizeof *out);
    int missing = 0;
    if (read_small_file(path, VOC_MAX_XML_BYTES, &buf, &len, &missing, err, errlen) != 0) {
        if (kind) *kind = VOC_ERR_IO;
        if (missing) dataset_errf(err, errlen, "voc: annotation file %s missing", path);
        return -1;
    }
    int rc = voc_parse_annotation_mem(buf, len, path, keep_difficult, out, kind, err, errlen);
    free(buf);
    return rc;
}

/* ---- sets ---- */

void voc_image_path(const VocSet *s, long i, char *path, size_t pathlen) {
    const VocImage *im = &s->images[i];
    snprintf(path, pathlen, "%s/%s/JPEGImages/%s.jpg", s->devkit, s->roots[im->root], im->id);
}

void voc_annotation_path(const VocSet *s, long i, char *path, size_t pathlen) {
    const VocImage *im = &s->images[i];
    snprintf(path, pathlen, "%s/%s/Annotations/%s.xml", s->devkit, s->roots[im->root], im->id);
}

void voc_close(VocSet *s) {
    if (!s) return;
    for (long i = 0; i < s->n; i++) voc_annotation_free(&s->images[i].ann);
    free(s->images);
    free(s);
}

static int valid_id(const char *id) {
    if (!id[0] || id[0] == '.') return 0;
    for (const char *p = id; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.')) return 0;
    return 1;
}

static int valid_dir(const char *d) {
    if (!d[0] || strcmp(d, ".") == 0 || strcmp(d, "..") == 0) return 0;
    for (const char *p = d; *p; p++)
        if (*p == '/' || *p == '\\') return 0;
    return 1;
}

/* read one split file: append its images (not yet annotated) to s */
static int read_split(VocSet *s, int root, const char *split, long *cap, char *err, size_t errlen) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/ImageSets/Main/%s.txt", s->devkit, s->roots[root], split);
    char *buf;
    size_t len;
    int missing = 0;
    if (read_small_file(path, 64L << 20, &buf, &len, &missing, err, errlen) != 0) {
        if (missing)
            dataset_errf(err, errlen, "voc: split file %s not found (is %s a VOCdevkit directory? datasets/fetch_voc.sh "
                    "downloads one, build/make_voc writes a synthetic one)", path, s->devkit);
        return -1;
    }
    if (memchr(buf, '\0', len) != NULL) {
        dataset_errf(err, errlen, "voc: split file %s contains a NUL byte: not a text list of image ids", path);
        free(buf);
        return -1;
    }
    long before = s->n, lineno = 0;
    char *save = NULL;
    int rc = 0;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *a = line;
        while (*a && isspace((unsigned char)*a)) a++;
        size_t l = strlen(a);
        while (l > 0 && isspace((unsigned char)a[l - 1])) a[--l] = '\0';
        if (l == 0) continue;
        if (l >= sizeof s->images[0].id || !valid_id(a)) {
            const char *why = l >= sizeof s->images[0].id ? "too long" : "not an image id";
            char shown[48];
            snprintf(shown, sizeof shown, "%.40s", a);
            for (char *p = shown; *p; p++)
                if (!isprint((unsigned char)*p)) *p = '?';
            dataset_errf(err, errlen, "voc: %s line %ld: \"%s\" is %s (one id per line, e.g. 000005 or 2008_000008%s)",
                    path, lineno, shown, why, strpbrk(a, " \t") ? "; a per-class list has two columns" : "");
            rc = -1;
            break;
        }
        if (s->n == *cap) {
            long nc = *cap ? 2 * *cap : 1024;
            VocImage *ni = realloc(s->images, (size_t)nc * sizeof *ni);
            if (!ni) {
                dataset_errf(err, errlen, "voc: %s: out of memory", path);
                rc = -1;
                break;
            }
            s->images = ni, *cap = nc;
        }
        VocImage *im = &s->images[s->n++];
        memset(im, 0, sizeof *im);
        memcpy(im->id, a, l + 1);
        im->root = root;
    }
    free(buf);
    if (rc == 0 && s->n == before) {
        dataset_errf(err, errlen, "voc: split file %s is empty (no image ids)", path);
        rc = -1;
    }
    return rc;
}

VocSet *voc_open_ex(const char *devkit, const char *const *splits, const VocOpenOptions *opt, char *err,
                    size_t errlen) {
    VocOpenOptions o = opt ? *opt : (VocOpenOptions){.check_images = 1};
    if (!devkit || !*devkit || !splits || !splits[0]) {
        dataset_errf(err, errlen, "voc: no VOCdevkit directory or no splits given");
        return NULL;
    }
    VocSet *s = calloc(1, sizeof *s);
    if (!s) {
        dataset_errf(err, errlen, "voc: out of memory");
        return NULL;
    }
    if (strlen(devkit) >= sizeof s->devkit) {
        dataset_errf(err, errlen, "voc: devkit path too long: %.100s...", devkit);
        free(s);
        return NULL;
    }
    snprintf(s->devkit, sizeof s->devkit, "%s", devkit);
    s->keep_difficult = o.keep_difficult;
    struct stat st;
    if (stat(devkit, &st) != 0 || !S_ISDIR(st.st_mode)) {
        dataset_errf(err, errlen, "voc: VOCdevkit directory %s not found (datasets/fetch_voc.sh downloads one, "
                "build/make_voc writes a synthetic one)", devkit);
        free(s);
        return NULL;
    }

    long cap = 0;
    for (int k = 0; splits[k]; k++) {
        const char *sp = splits[k], *slash = strrchr(sp, '/');
        char dir[64], split[256];
        if (!slash || (size_t)(slash - sp) >= sizeof dir || strlen(slash + 1) >= sizeof split) {
            dataset_errf(err, errlen, "voc: split \"%s\" is not <year dir>/<split>, e.g. VOC2007/trainval", sp);
            goto fail;
        }
        memcpy(dir, sp, (size_t)(slash - sp));
        dir[slash - sp] = '\0';
        snprintf(split, sizeof split, "%s", slash + 1);
        if (!valid_dir(dir) || !valid_id(split)) {
            dataset_errf(err, errlen, "voc: split \"%s\" is not <year dir>/<split>, e.g. VOC2007/trainval", sp);
            goto fail;
        }
        int root = -1;
        for (int r = 0; r < s->n_roots; r++)
            if (strcmp(s->roots[r], dir) == 0) root = r;
        if (root < 0) {
            if (s->n_roots == VOC_MAX_ROOTS) {
                dataset_errf(err, errlen, "voc: more than %d year directories", VOC_MAX_ROOTS);
                goto fail;
            }
            root = s->n_roots++;
            snprintf(s->roots[root], sizeof s->roots[root], "%s", dir);
        }
        if (read_split(s, root, split, &cap, err, errlen) != 0) goto fail;
    }

    /* annotations (and the JPEGs' existence) */
    long kept = 0;
    for (long i = 0; i < s->n; i++) {
        VocImage im = s->images[i];
        char path[2048], msg[4096];
        VocErr kind = VOC_OK;
        snprintf(path, sizeof path, "%s/%s/Annotations/%s.xml", s->devkit, s->roots[im.root], im.id);
        int rc = voc_parse_annotation_file(path, o.keep_difficult, &im.ann, &kind, msg, sizeof msg);
        if (rc == 0 && o.check_images) {
            snprintf(path, sizeof path, "%s/%s/JPEGImages/%s.jpg", s->devkit, s->roots[im.root], im.id);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
                kind = VOC_ERR_IMAGE;
                snprintf(msg, sizeof msg, "voc: image %s missing (its annotation %s/Annotations/%s.xml exists)", path,
                         s->roots[im.root], im.id);
                voc_annotation_free(&im.ann);
                rc = -1;
            }
        }
        if (rc != 0) {
            if (!o.skip_bad) {
                dataset_errf(err, errlen, "%s", msg);
                /* the images before i own annotations; the rest do not */
                s->n = kept;
                goto fail;
            }
            if (s->n_skipped == 0) snprintf(s->first_skip, sizeof s->first_skip, "%s", msg);
            s->n_skipped++;
            s->skipped_by[kind]++;
            continue;
        }
        s->images[kept++] = im;
    }
    s->n = kept;
    if (s->n == 0) {
        dataset_errf(err, errlen, "voc: no usable image in %s (%ld skipped; first: %s)", s->devkit, s->n_skipped,
                s->first_skip);
        goto fail;
    }
    for (long i = 0; i < s->n; i++)
        for (int j = 0; j < s->images[i].ann.n; j++) {
            const VocObject *ob = &s->images[i].ann.obj[j];
            s->n_objects++;
            s->n_difficult += ob->difficult != 0;
            s->class_count[ob->label]++;
        }
    return s;
fail:
    voc_close(s);
    return NULL;
}

VocSet *voc_open(const char *devkit, const char *const *splits, int keep_difficult, char *err, size_t errlen) {
    VocOpenOptions o = {.keep_difficult = keep_difficult, .skip_bad = 0, .check_images = 1};
    return voc_open_ex(devkit, splits, &o, err, errlen);
}

VocSet *voc_open_paper_split(const char *devkit, VocPart part, char *err, size_t errlen) {
    static const char *const train[] = {"VOC2007/trainval", "VOC2012/trainval", NULL};
    static const char *const test[] = {"VOC2007/test", NULL};
    return voc_open(devkit, part == VOC_TEST ? test : train, part == VOC_TEST, err, errlen);
}

/* ---- samples ---- */

VocTransform voc_transform_paper(int train) {
    return (VocTransform){.min_size = VOC_MIN_SIZE,
                          .max_size = 0,
                          .flip = train ? VOC_FLIP_RANDOM : VOC_FLIP_NONE,
                          .normalize = 1};
}

static int round_pos(double x) {
    long v = lround(x);
    return v < 1 ? 1 : v > 65535 * 16 ? 65535 * 16 : (int)v;
}

void voc_resize_dims(int w, int h, const VocTransform *t, int *out_w, int *out_h) {
    if (!t || t->min_size <= 0) {
        *out_w = w, *out_h = h;
        return;
    }
    int shorter = w < h ? w : h, longer = w < h ? h : w;
    int ns = t->min_size, nl = round_pos((double)longer * t->min_size / shorter);
    if (t->max_size > 0 && nl > t->max_size) {
        nl = t->max_size;
        ns = round_pos((double)shorter * t->max_size / longer);
    }
    if (w < h) *out_w = ns, *out_h = nl;
    else *out_w = nl, *out_h = ns;
}

void voc_sample_free(VocSample *out) {
    if (!out) return;
    free(out->image);
    free(out->boxes);
    free(out->labels);
    free(out->difficult);
    memset(out, 0, sizeof *out);
}

/* source coordinate and weight of the bilinear tap for output index u
 * (half-pixel centres, clamped at the borders like cv2 INTER_LINEAR) */
static void bilinear_taps(int n_out, int n_in, int *i0, int *i1, float *f) {
    double r = (double)n_in / n_out;
    for (int u = 0; u < n_out; u++) {
        double x = (u + 0.5) * r - 0.5;
        if (x < 0) x = 0;
        int a = (int)floor(x);
        if (a > n_in - 1) a = n_in - 1;
        double fr = x - a;
        int b = a + 1 < n_in ? a + 1 : n_in - 1;
        if (b == a) fr = 0;
        i0[u] = a, i1[u] = b, f[u] = (float)fr;
    }
}

int voc_get(const VocSet *s, long i, VocSample *out, const VocTransform *t, Rng *rng) {
    if (!out) return -1;
    out->err[0] = '\0';
    if (!s || i < 0 || i >= s->n) {
        snprintf(out->err, sizeof out->err, "voc: sample %ld out of range (set of %ld)", i, s ? s->n : 0L);
        return -1;
    }
    const VocImage *im = &s->images[i];
    char path[2048];
    voc_image_path(s, i, path, sizeof path);

    /* the random draw first, so it does not depend on whether decoding works */
    int flip = 0;
    if (t && t->flip == VOC_FLIP_ALWAYS) flip = 1;
    else if (t && t->flip == VOC_FLIP_RANDOM && rng) flip = (int)(rng_u64(rng) >> 63);

    JpegImage jp;
    char jerr[1024];
    if (jpeg_decode_file(path, 8, &jp, jerr, sizeof jerr) != 0) {
        struct stat st;
        if (stat(path, &st) != 0) snprintf(out->err, sizeof out->err, "voc: image %s missing", path);
        else snprintf(out->err, sizeof out->err, "voc: image %s: %s", path, jerr);
        return -1;
    }
    const int W = jp.width, H = jp.height;
    if (W != im->ann.width || H != im->ann.height) {
        snprintf(out->err, sizeof out->err, "voc: image %s is %dx%d but its annotation %s/Annotations/%s.xml says %dx%d",
                 path, W, H, s->roots[im->root], im->id, im->ann.width, im->ann.height);
        jpeg_image_free(&jp);
        return -1;
    }
    int OW, OH;
    voc_resize_dims(W, H, t, &OW, &OH);

    /* buffers */
    size_t need = (size_t)3 * OW * OH;
    if (out->image_cap < need) {
        real *ni = realloc(out->image, need * sizeof *ni);
        if (!ni) goto oom;
        out->image = ni, out->image_cap = need;
    }
    int nb = im->ann.n;
    if (out->box_cap < (size_t)nb || !out->boxes) {
        size_t nc = nb > 0 ? (size_t)nb : 1;
        float *b = realloc(out->boxes, nc * 4 * sizeof *b);
        if (b) out->boxes = b;
        int32_t *l = realloc(out->labels, nc * sizeof *l);
        if (l) out->labels = l;
        uint8_t *d = realloc(out->difficult, nc);
        if (d) out->difficult = d;
        if (!b || !l || !d) goto oom;
        out->box_cap = nc;
    }

    int *x0 = malloc(sizeof(int) * (size_t)(2 * OW + 2 * OH));
    float *fx = malloc(sizeof(float) * (size_t)(OW + OH));
    if (!x0 || !fx) {
        free(x0), free(fx);
        goto oom;
    }
    int *x1 = x0 + OW, *y0 = x1 + OW, *y1 = y0 + OH;
    float *fy = fx + OW;
    bilinear_taps(OW, W, x0, x1, fx);
    bilinear_taps(OH, H, y0, y1, fy);

    float sc[3], sh[3];
    for (int c = 0; c < 3; c++) {
        if (t && t->normalize) sc[c] = 1.0f / (255.0f * VOC_STD[c]), sh[c] = -VOC_MEAN[c] / VOC_STD[c];
        else sc[c] = 1.0f / 255.0f, sh[c] = 0.0f;
    }
    const size_t plane = (size_t)OW * OH;
    const uint8_t *px = jp.rgb;
    for (int v = 0; v < OH; v++) {
        const uint8_t *r0 = px + (size_t)y0[v] * W * 3, *r1 = px + (size_t)y1[v] * W * 3;
        const float wy = fy[v];
        for (int u = 0; u < OW; u++) {
            const int a = x0[u] * 3, b = x1[u] * 3;
            const float wx = fx[u];
            const int uo = flip ? OW - 1 - u : u;
            for (int c = 0; c < 3; c++) {
                float top = r0[a + c] + wx * (float)(r0[b + c] - r0[a + c]);
                float bot = r1[a + c] + wx * (float)(r1[b + c] - r1[a + c]);
                float val = top + wy * (bot - top);
                out->image[c * plane + (size_t)v * OW + uo] = (real)(val * sc[c] + sh[c]);
            }
        }
    }
    free(x0), free(fx);
    jpeg_image_free(&jp);

    out->width = OW, out->height = OH;
    out->orig_width = W, out->orig_height = H;
    out->scale_x = (double)OW / W, out->scale_y = (double)OH / H;
    out->flipped = flip;
    out->index = i;
    out->n = nb;
    for (int j = 0; j < nb; j++) {
        const VocObject *ob = &im->ann.obj[j];
        double bx1 = out->scale_x * (ob->xmin - 1.0), bx2 = out->scale_x * ob->xmax;
        double by1 = out->scale_y * (ob->ymin - 1.0), by2 = out->scale_y * ob->ymax;
        if (flip) {
            double f1 = OW - bx2, f2 = OW - bx1;
            bx1 = f1, bx2 = f2;
        }
        out->boxes[4 * j + 0] = (float)bx1;
        out->boxes[4 * j + 1] = (float)by1;
        out->boxes[4 * j + 2] = (float)bx2;
        out->boxes[4 * j + 3] = (float)by2;
        out->labels[j] = ob->label;
        out->difficult[j] = (uint8_t)(ob->difficult != 0);
    }
    return 0;
oom:
    jpeg_image_free(&jp);
    snprintf(out->err, sizeof out->err, "voc: %s: out of memory for a %dx%d sample", path, OW, OH);
    return -1;
}
