/* NPZ archives of named float32 arrays, and model weights stored that way:
 * one array per weight, keyed "<layer>/<weight>". */
#include "npz.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "model.h"
#include "npy.h"

#define NPY_SUFFIX ".npy"
#define KERAS_SUFFIX ":0"  /* Keras variable names end in ":0" */
#define WRITE_CHUNK 4096   /* floats encoded at a time */

/* ---------------------------------------------------------------- reading */

void cvis__npz_release(cvis__npz *z)
{
    if (!z)
        return;
    for (int64_t i = 0; i < z->n; i++) {
        cvis__free(z->arrays[i].key);
        cvis_tensor_free(z->arrays[i].value);
    }
    cvis__free(z->arrays);
    z->arrays = NULL;
    z->n = 0;
}

static cvis_status member_read(void *ctx, void *dst, size_t n)
{
    return cvis__zip_member_read(ctx, dst, n);
}

/* One member as a tensor: the .npy inside it, then the member's own end and CRC. */
static cvis_status read_member(const cvis__zip_archive *a, int64_t i, cvis_tensor **out)
{
    cvis__zip_member r;
    cvis_tensor *t = NULL;
    cvis_status st = cvis__zip_member_open(a, i, &r);
    if (st == CVIS_OK)
        st = cvis__npy_read(member_read, &r, a->entries[i].size, &t);
    if (st == CVIS_OK)
        st = cvis__zip_member_finish(&r);
    cvis__zip_member_close(&r);
    if (st != CVIS_OK) {
        cvis_tensor_free(t);
        return cvis__wrap_error(st, "member \"%s\"", a->entries[i].name);
    }
    *out = t;
    return CVIS_OK;
}

cvis_status cvis__npz_read_mem(const void *data, size_t size, cvis__npz *out)
{
    CVIS_CHECK_ARG((data || !size) && out, "data or out is NULL");
    cvis__zip_archive a;
    CVIS_TRY(cvis__zip_open(data, size, &a));
    cvis__npz z = {NULL, 0};
    cvis_status st = CVIS_OK;
    if (a.n) {
        z.arrays = cvis__calloc((size_t)a.n, sizeof *z.arrays);
        if (!z.arrays)
            st = cvis__fail(CVIS_E_NOMEM, "out of memory reading an NPZ archive");
    }
    for (int64_t i = 0; i < a.n && st == CVIS_OK; i++) {
        const char *name = a.entries[i].name;
        size_t len = strlen(name), sl = strlen(NPY_SUFFIX);
        if (len >= sl && !strcmp(name + len - sl, NPY_SUFFIX))
            len -= sl;
        cvis__npz_array *arr = &z.arrays[z.n++];
        arr->key = cvis__malloc(len + 1);
        if (!arr->key) {
            st = cvis__fail(CVIS_E_NOMEM, "out of memory reading an NPZ archive");
            break;
        }
        memcpy(arr->key, name, len);
        arr->key[len] = 0;
        st = read_member(&a, i, &arr->value);
    }
    cvis__zip_close(&a);
    if (st != CVIS_OK) {
        cvis__npz_release(&z);
        return st;
    }
    *out = z;
    return CVIS_OK;
}

/* ---------------------------------------------------------------- writing */

cvis_status cvis__npz_write_array(cvis__zip_writer *w, const char *key, const cvis_tensor *value)
{
    CVIS_CHECK_ARG(w && key && value, "writer, key or value is NULL");
    unsigned char header[CVIS__NPY_WRITE_HEADER];
    size_t hlen;
    CVIS_TRY(cvis__npy_write_header(value->ndim, value->shape, header, &hlen));
    size_t kl = strlen(key);
    char *name = cvis__malloc(kl + sizeof NPY_SUFFIX);
    unsigned char *buf = cvis__malloc(WRITE_CHUNK * 4);
    cvis_status st = CVIS_OK;
    if (!name || !buf)
        st = cvis__fail(CVIS_E_NOMEM, "out of memory writing an NPZ archive");
    if (st == CVIS_OK) {
        memcpy(name, key, kl);
        memcpy(name + kl, NPY_SUFFIX, sizeof NPY_SUFFIX);
        st = cvis__zip_writer_begin(w, name, hlen + (uint64_t)value->size * 4);
    }
    if (st == CVIS_OK)
        st = cvis__zip_writer_write(w, header, hlen);
    for (int64_t i = 0; i < value->size && st == CVIS_OK; i += WRITE_CHUNK) {
        size_t n = value->size - i < WRITE_CHUNK ? (size_t)(value->size - i) : WRITE_CHUNK;
        cvis__npy_encode_f32(value->data + i, n, buf);
        st = cvis__zip_writer_write(w, buf, n * 4);
    }
    if (st == CVIS_OK)
        st = cvis__zip_writer_end(w);
    cvis__free(name);
    cvis__free(buf);
    return st;
}

cvis_status cvis__npz_write_mem(int64_t n, const char *const *keys,
                                const cvis_tensor *const *values, void **data, size_t *size)
{
    CVIS_CHECK_ARG(n >= 0 && ((keys && values) || !n) && data && size, "bad arguments");
    cvis__zip_writer w;
    cvis__zip_writer_init(&w, NULL);
    cvis_status st = CVIS_OK;
    for (int64_t i = 0; i < n && st == CVIS_OK; i++)
        st = cvis__npz_write_array(&w, keys[i], values[i]);
    if (st == CVIS_OK)
        st = cvis__zip_writer_finish(&w);
    if (st == CVIS_OK)
        cvis__zip_writer_take(&w, data, size);
    cvis__zip_writer_release(&w);
    return st;
}

/* ---------------------------------------------------------- model weights */

/* Where the array for each weight of the model is found. */
typedef struct weight_map {
    int64_t n;          /* weights in the model */
    int64_t *array;     /* per weight, in layer order: index into the npz, or -1 */
} weight_map;

/* The weight an array key names ("<layer>/<weight>", maybe with ":0"):
 * *slot is its position in layer order. */
static cvis_status find_weight(const cvis__graph *g, const char *key, int64_t *slot)
{
    size_t len = strlen(key), kl = strlen(KERAS_SUFFIX);
    if (len >= kl && !strcmp(key + len - kl, KERAS_SUFFIX))
        len -= kl;
    const char *slash = NULL;
    for (const char *p = key; p < key + len; p++)
        if (*p == '/')
            slash = p;  /* the last one: layer names may hold '/', weight names do not */
    if (!slash)
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "key \"%s\" is not of the form \"<layer>/<weight>\"", key);
    size_t ln = (size_t)(slash - key), wn = len - ln - 1;
    int64_t base = 0;
    for (int i = 0; i < g->n_layers; i++) {
        const cvis__layer *l = &g->layers[i];
        if (strlen(l->name) == ln && !memcmp(l->name, key, ln)) {
            for (int k = 0; k < l->n_w; k++)
                if (strlen(l->w_names[k]) == wn && !memcmp(l->w_names[k], slash + 1, wn)) {
                    *slot = base + k;
                    return CVIS_OK;
                }
            return cvis__fail(CVIS_E_INVALID_ARG,
                              "unknown key \"%s\": layer \"%s\" has no weight \"%.*s\"", key,
                              l->name, (int)wn, slash + 1);
        }
        base += l->n_w;
    }
    return cvis__fail(CVIS_E_INVALID_ARG, "unknown key \"%s\": the model has no layer \"%.*s\"",
                      key, (int)ln, key);
}

/* Checks every array against the model and finds each weight's array. */
static cvis_status match_weights(const cvis__graph *g, const cvis__npz *z, weight_map *map)
{
    for (int64_t i = 0; i < map->n; i++)
        map->array[i] = -1;
    for (int64_t i = 0; i < z->n; i++) {
        const cvis__npz_array *a = &z->arrays[i];
        int64_t slot = 0;
        CVIS_TRY(find_weight(g, a->key, &slot));
        if (map->array[slot] >= 0)
            return cvis__fail(CVIS_E_INVALID_ARG, "keys \"%s\" and \"%s\" name the same weight",
                              z->arrays[map->array[slot]].key, a->key);
        map->array[slot] = i;
    }
    int64_t slot = 0;
    for (int l = 0; l < g->n_layers; l++) {
        const cvis__layer *layer = &g->layers[l];
        for (int k = 0; k < layer->n_w; k++, slot++) {
            if (map->array[slot] < 0) {
                int64_t missing = 0;
                for (int64_t s = slot; s < map->n; s++)
                    missing += map->array[s] < 0;
                return cvis__fail(CVIS_E_NOT_FOUND,
                                  "key \"%s/%s\" is missing (%lld of the model's weights %s "
                                  "missing)", layer->name, layer->w_names[k], (long long)missing,
                                  missing == 1 ? "is" : "are");
            }
            const cvis__npz_array *a = &z->arrays[map->array[slot]];
            cvis__shape want = cvis__tensor_get_shape(layer->w[k]);
            cvis__shape got = cvis__tensor_get_shape(a->value);
            if (!cvis__shape_equal(&want, &got)) {
                char ws[192], gs[192];
                return cvis__fail(CVIS_E_SHAPE, "key \"%s\": the weight has shape %s, the array %s",
                                  a->key, cvis__shape_str(&want, ws, sizeof ws),
                                  cvis__shape_str(&got, gs, sizeof gs));
            }
            cvis_status st = cvis__check_finite(a->value->data, a->value->size, "the array");
            if (st != CVIS_OK)
                return cvis__wrap_error(st, "key \"%s\"", a->key);
        }
    }
    return CVIS_OK;
}

cvis_status cvis__model_load_npz_mem(cvis_model *m, const void *data, size_t size)
{
    CVIS_CHECK_ARG(m && (data || !size), "model or data is NULL");
    cvis__npz z;
    CVIS_TRY(cvis__npz_read_mem(data, size, &z));
    const cvis__graph *g = m->g;
    weight_map map = {0, NULL};
    for (int l = 0; l < g->n_layers; l++)
        map.n += g->layers[l].n_w;
    cvis_status st = CVIS_OK;
    map.array = cvis__calloc(map.n ? (size_t)map.n : 1, sizeof *map.array);
    if (!map.array)
        st = cvis__fail(CVIS_E_NOMEM, "out of memory loading weights");
    if (st == CVIS_OK)
        st = match_weights(g, &z, &map);
    if (st == CVIS_OK) {
        /* Everything checked: from here nothing can fail. */
        int64_t slot = 0;
        for (int l = 0; l < g->n_layers; l++)
            for (int k = 0; k < g->layers[l].n_w; k++, slot++) {
                cvis_tensor *w = g->layers[l].w[k];
                if (w->size)
                    memcpy(w->data, z.arrays[map.array[slot]].value->data,
                           (size_t)w->size * sizeof(float));
            }
    }
    cvis__free(map.array);
    cvis__npz_release(&z);
    return st;
}

CVIS_API cvis_status cvis_model_load_npz(cvis_model *m, const char *path)
{
    CVIS_CHECK_ARG(m && path, "model or path is NULL");
    void *data;
    size_t size;
    CVIS_TRY(cvis__file_read(path, &data, &size));
    cvis_status st = cvis__model_load_npz_mem(m, data, size);
    cvis__free(data);
    if (st != CVIS_OK)
        return cvis__wrap_error(st, "loading weights from %s", path);
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_save_npz(const cvis_model *m, const char *path)
{
    CVIS_CHECK_ARG(m && path, "model or path is NULL");
    cvis__file_out out;
    CVIS_TRY(cvis__file_out_open(path, &out));
    cvis__zip_writer w;
    cvis__zip_writer_init(&w, out.f);
    cvis_status st = CVIS_OK;
    const cvis__graph *g = m->g;
    for (int l = 0; l < g->n_layers && st == CVIS_OK; l++) {
        const cvis__layer *layer = &g->layers[l];
        for (int k = 0; k < layer->n_w && st == CVIS_OK; k++) {
            size_t n = strlen(layer->name) + strlen(layer->w_names[k]) + 2;
            char *key = cvis__malloc(n);
            if (!key) {
                st = cvis__fail(CVIS_E_NOMEM, "out of memory saving weights");
                break;
            }
            snprintf(key, n, "%s/%s", layer->name, layer->w_names[k]);
            st = cvis__npz_write_array(&w, key, layer->w[k]);
            cvis__free(key);
        }
    }
    if (st == CVIS_OK)
        st = cvis__zip_writer_finish(&w);
    cvis__zip_writer_release(&w);
    if (st == CVIS_OK)
        st = cvis__file_out_commit(&out);
    else
        cvis__file_out_abort(&out);
    if (st != CVIS_OK)
        return cvis__wrap_error(st, "saving weights to %s", path);
    return CVIS_OK;
}
