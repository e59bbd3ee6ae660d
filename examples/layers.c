/* The tutorial's first section in C: list a model's layers, the shapes of
 * each convolution's filters and biases, and each layer's output shape.
 *
 *   layers [WEIGHTS.npz]
 *
 * Without an argument the tutorial's network is built with seeded random
 * weights; with one, its weights are loaded from the NPZ file. */
#include <stdio.h>
#include <string.h>

#include "cvis.h"
#include "tutorial_model.h"

static void print_shape(int ndim, const int64_t *shape, int with_batch)
{
    printf("(");
    if (with_batch)
        printf("None%s", ndim ? ", " : "");
    for (int i = 0; i < ndim; i++)
        printf("%lld%s", (long long)shape[i], i + 1 < ndim ? ", " : (ndim == 1 && !with_batch ? "," : ""));
    printf(")");
}

static int fail(const char *what, cvis_status st)
{
    fprintf(stderr, "layers: %s: %s\n", what, cvis_last_error()[0] ? cvis_last_error() : cvis_status_string(st));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        fprintf(stderr, "usage: layers [WEIGHTS.npz]\n");
        return argc > 2 ? 2 : 0;
    }
    cvis_model *m;
    cvis_status st = tutorial_model(3, &m);
    if (st != CVIS_OK)
        return fail("building the model", st);
    if (argc == 2 && (st = cvis_model_load_npz(m, argv[1])) != CVIS_OK) {
        cvis_model_free(m);
        return fail(argv[1], st);
    }
    printf("libcvis %s: the tutorial's model, %d layers\n", cvis_version_string(),
           cvis_model_layer_count(m));
    for (int i = 0; i < cvis_model_layer_count(m); i++) {
        const char *name = cvis_model_layer_name(m, i);
        printf("[*] layer: %s (%s)", name, cvis_model_layer_type(m, i));
        if (!strstr(name, "conv")) {
            printf(" No\n");
            continue;
        }
        printf("\n");
        cvis_tensor *f, *b;
        if ((st = cvis_model_get_filters(m, i, &f, &b)) != CVIS_OK) {
            cvis_model_free(m);
            return fail("reading filters", st);
        }
        int64_t fs[CVIS_MAX_DIMS], bs[CVIS_MAX_DIMS], os[CVIS_MAX_DIMS];
        int ond;
        cvis_tensor_shape(f, fs);
        cvis_tensor_shape(b, bs);
        cvis_model_layer_output_shape(m, i, &ond, os);
        printf("[**] id: %d, layer.name: %s, filters_weights.shape: ", i, name);
        print_shape(cvis_tensor_ndim(f), fs, 0);
        printf(", biases_weights.shape: ");
        print_shape(cvis_tensor_ndim(b), bs, 0);
        printf("\n[**] layer.output.shape: ");
        print_shape(ond, os, 1);
        printf("\n");
        cvis_tensor_free(f);
        cvis_tensor_free(b);
    }
    cvis_model_free(m);
    return 0;
}
