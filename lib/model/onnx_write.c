/* ONNX writer (placeholder). */
#include "core/error.h"
#include "model.h"

CVIS_API cvis_status cvis_model_save_onnx_memory(const cvis_model *m, void **data, size_t *size)
{
    (void)m;
    (void)data;
    (void)size;
    return cvis__fail(CVIS_E_UNSUPPORTED, "not yet");
}

CVIS_API cvis_status cvis_model_save_onnx(const cvis_model *m, const char *path)
{
    (void)m;
    (void)path;
    return cvis__fail(CVIS_E_UNSUPPORTED, "not yet");
}
