/* NPZ weights (placeholder until the reader lands). */
#include "core/error.h"
#include "model.h"

CVIS_API cvis_status cvis_model_load_npz(cvis_model *m, const char *path)
{
    (void)m;
    (void)path;
    return cvis__fail(CVIS_E_UNSUPPORTED, "NPZ loading is not implemented yet");
}

CVIS_API cvis_status cvis_model_save_npz(const cvis_model *m, const char *path)
{
    (void)m;
    (void)path;
    return cvis__fail(CVIS_E_UNSUPPORTED, "NPZ saving is not implemented yet");
}
