/* NPZ weights: round trips, files written by numpy, every error status,
 * and hostile input (truncation at every offset, single-bit flips, huge
 * declared sizes, failing allocations).  Hostile buffers are copied into
 * allocations of their exact size, so that AddressSanitizer sees any read
 * past the end. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/alloc.h"
#include "core/file.h"
#include "model/npy.h"
#include "model/npz.h"
#include "model/zip.h"

/* Written by numpy 1.24's np.savez (stored members, ZIP64 extra fields in
 * the local headers), from:
 *   a = np.arange(6, dtype='<f8').reshape(2, 3) * 0.1
 *   f = np.asfortranarray(np.arange(12, dtype='<f4').reshape(3, 4))
 *   h = np.array([1, -2, 0.5, 65504, 2.0**-24, np.inf], dtype='<f2')
 *   s = np.array(3.5, dtype='<f4')
 *   e = np.zeros((0, 3), dtype='<f4')
 *   b = np.array([1.5, -2.25], dtype='>f4') */
static const unsigned char numpy_npz[] = {
    0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x5f, 0x7a,
    0x18, 0x3c, 0xb0, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14, 0x00, 0x61, 0x2e,
    0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb0,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76,
    0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x38, 0x27,
    0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72,
    0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65,
    0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x20, 0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9a,
    0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f, 0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xc9, 0x3f, 0x34,
    0x33, 0x33, 0x33, 0x33, 0x33, 0xd3, 0x3f, 0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xd9, 0x3f, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x21, 0x00, 0x48, 0x4a, 0xa3, 0x4c, 0xb0, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00,
    0x00, 0x05, 0x00, 0x14, 0x00, 0x66, 0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0xb0, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e,
    0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27,
    0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61,
    0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x54, 0x72, 0x75, 0x65, 0x2c, 0x20,
    0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x33, 0x2c, 0x20, 0x34, 0x29, 0x2c,
    0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0x00, 0x41, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00,
    0xa0, 0x40, 0x00, 0x00, 0x10, 0x41, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0xc0, 0x40, 0x00, 0x00,
    0x20, 0x41, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0xe0, 0x40, 0x00, 0x00, 0x30, 0x41, 0x50, 0x4b,
    0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x51, 0x6b, 0x04, 0x7d,
    0x8c, 0x00, 0x00, 0x00, 0x8c, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14, 0x00, 0x68, 0x2e, 0x6e, 0x70,
    0x79, 0x01, 0x00, 0x10, 0x00, 0x8c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8c, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b,
    0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x32, 0x27, 0x2c, 0x20,
    0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a,
    0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a,
    0x20, 0x28, 0x36, 0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b, 0x01, 0x00, 0x00,
    0x7c, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x61,
    0xc3, 0x5b, 0x33, 0x84, 0x00, 0x00, 0x00, 0x84, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14, 0x00, 0x73,
    0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00,
    0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34,
    0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65,
    0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70,
    0x65, 0x27, 0x3a, 0x20, 0x28, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0x60, 0x40, 0x50, 0x4b, 0x03, 0x04,
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0xa3, 0x68, 0x52, 0x77, 0x80, 0x00,
    0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14, 0x00, 0x65, 0x2e, 0x6e, 0x70, 0x79, 0x01,
    0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64,
    0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66,
    0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46,
    0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28,
    0x30, 0x2c, 0x20, 0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x0a, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21,
    0x00, 0x2b, 0xff, 0x02, 0xd0, 0x88, 0x00, 0x00, 0x00, 0x88, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14,
    0x00, 0x62, 0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59,
    0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3e,
    0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72,
    0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x3f, 0xc0, 0x00, 0x00, 0xc0, 0x10,
    0x00, 0x00, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x21, 0x00, 0x5f, 0x7a, 0x18, 0x3c, 0xb0, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x05, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x61, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x21, 0x00, 0x48, 0x4a, 0xa3, 0x4c, 0xb0, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00,
    0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0xe7,
    0x00, 0x00, 0x00, 0x66, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x51, 0x6b, 0x04, 0x7d, 0x8c, 0x00, 0x00, 0x00,
    0x8c, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x80, 0x01, 0xce, 0x01, 0x00, 0x00, 0x68, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x01, 0x02, 0x14,
    0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x61, 0xc3, 0x5b, 0x33, 0x84,
    0x00, 0x00, 0x00, 0x84, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x80, 0x01, 0x91, 0x02, 0x00, 0x00, 0x73, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b,
    0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0xa3, 0x68,
    0x52, 0x77, 0x80, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x4c, 0x03, 0x00, 0x00, 0x65, 0x2e, 0x6e, 0x70,
    0x79, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21,
    0x00, 0x2b, 0xff, 0x02, 0xd0, 0x88, 0x00, 0x00, 0x00, 0x88, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x03, 0x04, 0x00, 0x00, 0x62,
    0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x06, 0x00,
    0x32, 0x01, 0x00, 0x00, 0xc2, 0x04, 0x00, 0x00, 0x00, 0x00,
};

static char tmpdir[64];

static void path_in_tmp(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static int count_tmp_files(void)
{
    int n = 0;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, size, f) == size);
    if (f)
        fclose(f);
}

static const cvis__npz_array *find(const cvis__npz *z, const char *key)
{
    for (int64_t i = 0; i < z->n; i++)
        if (!strcmp(z->arrays[i].key, key))
            return &z->arrays[i];
    return NULL;
}

static int same_tensor(const cvis_tensor *a, const cvis_tensor *b)
{
    if (a->ndim != b->ndim || a->size != b->size)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return !a->size || !memcmp(a->data, b->data, (size_t)a->size * sizeof(float));
}

static int same_npz(const cvis__npz *a, const cvis__npz *b)
{
    if (a->n != b->n)
        return 0;
    for (int64_t i = 0; i < a->n; i++)
        if (strcmp(a->arrays[i].key, b->arrays[i].key) ||
            !same_tensor(a->arrays[i].value, b->arrays[i].value))
            return 0;
    return 1;
}

/* conv -> batch norm -> flatten -> dense, every weight non-trivial. */
static cvis_model *tiny_model(uint64_t seed)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(8, 8, 3, &m));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_VALID,
                                   CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_batch_norm(m, "block/bn", CVIS_PREV, 1e-3f, NULL));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 5, CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_init_weights(m, seed));
    for (int l = 0; l < cvis_model_layer_count(m); l++)
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            cvis_tensor *w;
            CHECK_OK(cvis_model_get_weight(m, l, k, &w));
            float *d = cvis_tensor_data(w);
            for (int64_t i = 0; i < cvis_tensor_size(w); i++)
                d[i] += (float)((seed * 31 + (uint64_t)(l * 7 + k * 3) + (uint64_t)i) % 17) / 16.0f + 0.25f;
            CHECK_OK(cvis_model_set_weight(m, l, k, w));
            cvis_tensor_free(w);
        }
    return m;
}

static int same_weights(const cvis_model *a, const cvis_model *b)
{
    int same = 1;
    for (int l = 0; l < cvis_model_layer_count(a); l++)
        for (int k = 0; k < cvis_model_weight_count(a, l); k++) {
            cvis_tensor *x = NULL, *y = NULL;
            CHECK_OK(cvis_model_get_weight(a, l, k, &x));
            CHECK_OK(cvis_model_get_weight(b, l, k, &y));
            same &= x && y && same_tensor(x, y);
            cvis_tensor_free(x);
            cvis_tensor_free(y);
        }
    return same;
}

/* The model's weights as keys and tensors (copies), for building archives. */
typedef struct weight_list {
    int n;
    char *keys[32];
    cvis_tensor *values[32];
} weight_list;

static void list_weights(const cvis_model *m, weight_list *wl)
{
    wl->n = 0;
    for (int l = 0; l < cvis_model_layer_count(m); l++)
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            char key[256];
            snprintf(key, sizeof key, "%s/%s", cvis_model_layer_name(m, l),
                     cvis_model_weight_name(m, l, k));
            wl->keys[wl->n] = strdup(key);
            CHECK_OK(cvis_model_get_weight(m, l, k, &wl->values[wl->n]));
            wl->n++;
        }
}

static void free_weights(weight_list *wl)
{
    for (int i = 0; i < wl->n; i++) {
        free(wl->keys[i]);
        cvis_tensor_free(wl->values[i]);
    }
    wl->n = 0;
}

/* Writes the list as an NPZ file at path. */
static void save_list(const weight_list *wl, const char *path)
{
    void *data = NULL;
    size_t size = 0;
    CHECK_OK(cvis__npz_write_mem(wl->n, (const char *const *)wl->keys,
                                 (const cvis_tensor *const *)wl->values, &data, &size));
    write_file(path, data, size);
    cvis__free(data);
}

/* ------------------------------------------------------------------ tests */

static void test_numpy_file(void)
{
    cvis__npz z;
    CHECK_OK(cvis__npz_read_mem(numpy_npz, sizeof numpy_npz, &z));
    CHECK(z.n == 6);
    const cvis__npz_array *a = find(&z, "a"), *f = find(&z, "f"), *h = find(&z, "h");
    const cvis__npz_array *s = find(&z, "s"), *e = find(&z, "e"), *b = find(&z, "b");
    CHECK(a && f && h && s && e && b);
    if (!(a && f && h && s && e && b)) {
        cvis__npz_release(&z);
        return;
    }
    CHECK(a->value->ndim == 2 && a->value->shape[0] == 2 && a->value->shape[1] == 3);
    for (int i = 0; i < 6; i++)
        CHECK(a->value->data[i] == (float)(i * 0.1));  /* float64 rounded once */
    CHECK(f->value->ndim == 2 && f->value->shape[0] == 3 && f->value->shape[1] == 4);
    for (int i = 0; i < 12; i++)
        CHECK(f->value->data[i] == (float)i);          /* Fortran order undone */
    const float hv[6] = {1, -2, 0.5f, 65504, 5.9604644775390625e-08f, INFINITY};
    CHECK(h->value->size == 6);
    for (int i = 0; i < 6 && h->value->size == 6; i++)
        CHECK(h->value->data[i] == hv[i]);
    CHECK(s->value->ndim == 0 && s->value->size == 1 && s->value->data[0] == 3.5f);
    CHECK(e->value->ndim == 2 && e->value->shape[0] == 0 && e->value->shape[1] == 3 &&
          e->value->size == 0);
    CHECK(b->value->size == 2 && b->value->data[0] == 1.5f && b->value->data[1] == -2.25f);
    cvis__npz_release(&z);
}

/* A .npy in memory: magic, version, header text padded with spaces to 64, data. */
static size_t make_npy(unsigned char *buf, int major, const char *text, const void *data,
                       size_t data_len)
{
    size_t tl = strlen(text), pre = major == 1 ? 10 : 12;
    size_t hl = (pre + tl + 1 + 63) / 64 * 64 - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    buf[8] = (unsigned char)(hl & 0xFF);
    buf[9] = (unsigned char)(hl >> 8);
    if (major != 1)
        buf[10] = buf[11] = 0;
    memcpy(buf + pre, text, tl);
    memset(buf + pre + tl, ' ', hl - tl - 1);
    buf[pre + hl - 1] = '\n';
    memcpy(buf + pre + hl, data, data_len);
    return pre + hl + data_len;
}

static cvis_status read_npy(int major, const char *text, const void *data, size_t n,
                            cvis_tensor **out)
{
    unsigned char buf[512];
    size_t len = make_npy(buf, major, text, data, n);
    unsigned char *exact = malloc(len);
    memcpy(exact, buf, len);
    cvis_status st = cvis__npy_read_mem(exact, len, out);
    free(exact);
    return st;
}

static void test_npy_headers(void)
{
    const float v[6] = {1, 2, 3, 4, 5, 6};
    cvis_tensor *t = NULL;
    /* Versions 2.0 and 3.0 differ from 1.0 only in the length field. */
    for (int major = 1; major <= 3; major++) {
        CHECK_OK(read_npy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                          v, sizeof v, &t));
        CHECK(t && t->ndim == 2 && t->shape[1] == 3 && t->data[5] == 6);
        cvis_tensor_free(t);
        t = NULL;
    }
    /* Keys in any order, double quotes, no trailing comma, Python 2 longs. */
    CHECK_OK(read_npy(1, "{\"shape\": (3L, 2L), \"fortran_order\": True, \"descr\": \"<f4\"}",
                      v, sizeof v, &t));
    /* Fortran (3, 2): column 0 is 1 2 3, column 1 is 4 5 6. */
    CHECK(t && t->data[0] == 1 && t->data[1] == 4 && t->data[2] == 2 && t->data[5] == 6);
    cvis_tensor_free(t);
    t = NULL;
    /* Fortran order over three axes, against the definition. */
    float f3[24];
    for (int i = 0; i < 24; i++)
        f3[i] = (float)i;
    CHECK_OK(read_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", f3,
                      sizeof f3, &t));
    int ok = t != NULL;
    for (int i = 0; ok && i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ok &= t->data[(i * 3 + j) * 4 + k] == f3[i + 2 * j + 6 * k];
    CHECK(ok);
    cvis_tensor_free(t);
    t = NULL;
    /* Half precision: subnormals, signed zero, NaN. */
    const unsigned char half[8] = {0x01, 0x00, 0x00, 0x80, 0x00, 0x7e, 0xff, 0x03};
    CHECK_OK(read_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", half,
                      sizeof half, &t));
    CHECK(t && t->data[0] == 5.9604644775390625e-08f && t->data[1] == 0 && signbit(t->data[1]) &&
          isnan(t->data[2]) && t->data[3] == 1023 * 5.9604644775390625e-08f);
    cvis_tensor_free(t);
    t = NULL;
    /* Big-endian float64. */
    const unsigned char be[8] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0};  /* 1.5 */
    CHECK_OK(read_npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", be,
                      sizeof be, &t));
    CHECK(t && t->data[0] == 1.5f);
    cvis_tensor_free(t);
    t = NULL;

    /* Refused dtypes say which. */
    CHECK_STATUS(read_npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", v, 4,
                          &t), CVIS_E_UNSUPPORTED);
    CHECK(strstr(cvis_last_error(), "|u1") != NULL);
    CHECK_STATUS(read_npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", v, 24,
                          &t), CVIS_E_UNSUPPORTED);
    CHECK(strstr(cvis_last_error(), "<i8") != NULL);
    CHECK_STATUS(read_npy(1, "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                          v, 4, &t), CVIS_E_UNSUPPORTED);
    CHECK_STATUS(read_npy(1, "{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", v, 4, &t),
                 CVIS_E_UNSUPPORTED);
    /* Malformed headers and sizes that do not add up. */
    const char *bad[] = {
        "{'descr': '<f4', 'fortran_order': False, }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1, }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), ",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }",  /* 24 bytes follow, not 20 */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }",
        "['descr', '<f4']",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_STATUS(read_npy(1, bad[i], v, sizeof v, &t), CVIS_E_FORMAT);
    /* A shape whose element count overflows. */
    CHECK_STATUS(read_npy(1, "{'descr': '<f8', 'fortran_order': False, "
                             "'shape': (4294967296, 4294967296), }", v, sizeof v, &t),
                 CVIS_E_LIMIT);
    /* Versions and magic. */
    unsigned char buf[512];
    size_t len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", v,
                          sizeof v);
    buf[7] = 1;
    CHECK_STATUS(cvis__npy_read_mem(buf, len, &t), CVIS_E_UNSUPPORTED);
    buf[7] = 0;
    buf[6] = 4;
    CHECK_STATUS(cvis__npy_read_mem(buf, len, &t), CVIS_E_UNSUPPORTED);
    buf[6] = 1;
    buf[1] = 'X';
    CHECK_STATUS(cvis__npy_read_mem(buf, len, &t), CVIS_E_FORMAT);
    buf[1] = 'N';
    buf[8] = 0xFF;  /* header length past the end */
    buf[9] = 0xFF;
    CHECK_STATUS(cvis__npy_read_mem(buf, len, &t), CVIS_E_FORMAT);
    CHECK(t == NULL);
}

/* What the writer produces: a header numpy accepts, aligned data. */
static void test_npy_writer(void)
{
    unsigned char h[CVIS__NPY_WRITE_HEADER];
    size_t len = 0;
    CHECK_OK(cvis__npy_write_header(2, (int64_t[]){3, 4}, h, &len));
    /* 10 + 59 + 1 bytes, padded to 128: what numpy writes too. */
    CHECK(len == 128 && h[len - 1] == '\n' && h[len - 2] == ' ' && h[8] == 118 && h[9] == 0);
    CHECK(!memcmp(h + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 59));
    CHECK_OK(cvis__npy_write_header(1, (int64_t[]){5}, h, &len));
    CHECK(strstr((char *)h + 10, "(5,)") != NULL);
    CHECK_OK(cvis__npy_write_header(0, NULL, h, &len));
    CHECK(strstr((char *)h + 10, "'shape': ()") != NULL);
    int64_t big[8] = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX,
                      INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    CHECK_OK(cvis__npy_write_header(8, big, h, &len));
    CHECK(len % 64 == 0 && len <= CVIS__NPY_WRITE_HEADER);
}

static void test_round_trip(void)
{
    char p1[128], p2[128];
    path_in_tmp(p1, sizeof p1, "w1.npz");
    path_in_tmp(p2, sizeof p2, "w2.npz");
    cvis_model *a = tiny_model(1), *b = tiny_model(2), *c = tiny_model(3);
    CHECK(!same_weights(a, b));
    CHECK_OK(cvis_model_save_npz(a, p1));
    CHECK_OK(cvis_model_load_npz(b, p1));
    CHECK(same_weights(a, b));
    /* Saving is deterministic: the same weights give the same bytes. */
    CHECK_OK(cvis_model_save_npz(b, p2));
    void *d1 = NULL, *d2 = NULL;
    size_t n1 = 0, n2 = 0;
    CHECK_OK(cvis__file_read(p1, &d1, &n1));
    CHECK_OK(cvis__file_read(p2, &d2, &n2));
    CHECK(n1 == n2 && d1 && d2 && !memcmp(d1, d2, n1));
    /* Saving over an existing file replaces it. */
    CHECK_OK(cvis_model_save_npz(c, p1));
    CHECK_OK(cvis_model_load_npz(b, p1));
    CHECK(same_weights(b, c));
    CHECK(count_tmp_files() == 2);  /* no temporary files left behind */
    cvis__free(d1);
    cvis__free(d2);
    cvis_model_free(a);
    cvis_model_free(b);
    cvis_model_free(c);
}

/* ZIP64 records (forced, as they would be for members over 4 GiB) read back. */
static void test_zip64(void)
{
    cvis_model *m = tiny_model(4);
    weight_list wl;
    list_weights(m, &wl);
    cvis__zip_writer w;
    cvis__zip_writer_init(&w, NULL);
    w.force_zip64 = 1;
    for (int i = 0; i < wl.n; i++)
        CHECK_OK(cvis__npz_write_array(&w, wl.keys[i], wl.values[i]));
    CHECK_OK(cvis__zip_writer_finish(&w));
    void *data = NULL;
    size_t size = 0;
    cvis__zip_writer_take(&w, &data, &size);
    cvis__zip_writer_release(&w);
    const unsigned char *end = (const unsigned char *)data + size - 22;
    CHECK(size > 22 && end[10] == 0xFF && end[11] == 0xFF && end[16] == 0xFF);  /* saturated */
    cvis__npz z;
    CHECK_OK(cvis__npz_read_mem(data, size, &z));
    int ok = z.n == wl.n;
    for (int i = 0; ok && i < wl.n; i++)
        ok &= !strcmp(z.arrays[i].key, wl.keys[i]) && same_tensor(z.arrays[i].value, wl.values[i]);
    CHECK(ok);
    cvis__npz_release(&z);
    char path[128];
    path_in_tmp(path, sizeof path, "zip64.npz");
    write_file(path, data, size);
    cvis_model *m2 = tiny_model(5);
    CHECK_OK(cvis_model_load_npz(m2, path));
    CHECK(same_weights(m, m2));
    unlink(path);
    cvis__free(data);
    free_weights(&wl);
    cvis_model_free(m);
    cvis_model_free(m2);
}

/* Every model-level error: the status, the key in the message, the model unchanged. */
static void test_model_errors(void)
{
    char path[128], msg[1024];
    path_in_tmp(path, sizeof path, "bad.npz");
    cvis_model *m = tiny_model(6), *ref = tiny_model(6), *src = tiny_model(7);
    weight_list wl;

    CHECK_STATUS(cvis_model_load_npz(m, "/nonexistent/weights.npz"), CVIS_E_IO);
    CHECK(strstr(cvis_last_error(), "/nonexistent/weights.npz") != NULL);
    CHECK_STATUS(cvis_model_load_npz(m, tmpdir), CVIS_E_IO);
    CHECK_STATUS(cvis_model_load_npz(NULL, path), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_model_load_npz(m, NULL), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_model_save_npz(m, "/nonexistent/dir/w.npz"), CVIS_E_IO);
    write_file(path, "not a zip file at all", 21);
    CHECK_STATUS(cvis_model_load_npz(m, path), CVIS_E_FORMAT);

    /* A missing weight. */
    list_weights(src, &wl);
    cvis_tensor_free(wl.values[3]);
    free(wl.keys[3]);
    for (int i = 3; i + 1 < wl.n; i++) {
        wl.keys[i] = wl.keys[i + 1];
        wl.values[i] = wl.values[i + 1];
    }
    wl.n--;
    save_list(&wl, path);
    CHECK_STATUS(cvis_model_load_npz(m, path), CVIS_E_NOT_FOUND);
    CHECK(strstr(cvis_last_error(), "block/bn/beta") != NULL);
    free_weights(&wl);

    /* An unknown key: another layer, another weight, no slash. */
    const char *unknown[] = {"conv2d_9/kernel", "dense/gamma", "kernel"};
    for (int u = 0; u < 3; u++) {
        list_weights(src, &wl);
        wl.keys[wl.n] = strdup(unknown[u]);
        CHECK_OK(cvis_tensor_clone(wl.values[0], &wl.values[wl.n]));
        wl.n++;
        save_list(&wl, path);
        CHECK_STATUS(cvis_model_load_npz(m, path), CVIS_E_INVALID_ARG);
        CHECK(strstr(cvis_last_error(), unknown[u]) != NULL);
        free_weights(&wl);
    }

    /* The same weight twice ("x" and "x:0"). */
    list_weights(src, &wl);
    wl.keys[wl.n] = strdup("dense/bias:0");
    CHECK_OK(cvis_tensor_clone(wl.values[wl.n - 1], &wl.values[wl.n]));
    wl.n++;
    save_list(&wl, path);
    CHECK_STATUS(cvis_model_load_npz(m, path), CVIS_E_INVALID_ARG);
    free_weights(&wl);

    /* A wrong shape. */
    list_weights(src, &wl);
    cvis_tensor_free(wl.values[1]);
    CHECK_OK(cvis_tensor_create(1, (int64_t[]){5}, &wl.values[1]));
    save_list(&wl, path);
    CHECK_STATUS(cvis_model_load_npz(m, path), CVIS_E_SHAPE);
    snprintf(msg, sizeof msg, "%s", cvis_last_error());
    CHECK(strstr(msg, "conv2d/bias") && strstr(msg, "(4,)") && strstr(msg, "(5,)"));
    free_weights(&wl);

    /* NaN and infinity. */
    for (int inf = 0; inf < 2; inf++) {
        list_weights(src, &wl);
        wl.values[6]->data[wl.values[6]->size - 1] = inf ? -INFINITY : NAN;
        save_list(&wl, path);
        CHECK_STATUS(cvis_model_load_npz(m, path), CVIS_E_NONFINITE);
        CHECK(strstr(cvis_last_error(), "dense/kernel") != NULL);
        free_weights(&wl);
    }
    CHECK(same_weights(m, ref));  /* every failed load left it as it was */

    /* Keras names load. */
    list_weights(src, &wl);
    for (int i = 0; i < wl.n; i++) {
        char *k = malloc(strlen(wl.keys[i]) + 3);
        sprintf(k, "%s:0", wl.keys[i]);
        free(wl.keys[i]);
        wl.keys[i] = k;
    }
    save_list(&wl, path);
    CHECK_OK(cvis_model_load_npz(m, path));
    CHECK(same_weights(m, src));
    free_weights(&wl);

    /* A model without weights loads an empty archive, and refuses any key. */
    cvis_model *empty = NULL;
    CHECK_OK(cvis_model_new(4, 4, 1, &empty));
    CHECK_OK(cvis_model_add_flatten(empty, NULL, CVIS_PREV, NULL));
    wl.n = 0;
    save_list(&wl, path);
    CHECK_OK(cvis_model_load_npz(empty, path));
    CHECK_STATUS(cvis_model_load_npz(m, path), CVIS_E_NOT_FOUND);
    char p2[128];
    path_in_tmp(p2, sizeof p2, "empty.npz");
    CHECK_OK(cvis_model_save_npz(empty, p2));
    CHECK_OK(cvis_model_load_npz(empty, p2));
    unlink(p2);
    unlink(path);
    cvis_model_free(empty);
    cvis_model_free(m);
    cvis_model_free(ref);
    cvis_model_free(src);
}

/* Truncation at every offset and single-bit flips: never a crash, a leak
 * or a silent change.  A flip that still reads must give the original
 * arrays (everything that matters is covered by a CRC or a cross-check). */
static void test_hostile(const unsigned char *orig, size_t size, const char *what)
{
    cvis__npz ref;
    CHECK_OK(cvis__npz_read_mem(orig, size, &ref));
    int bad_status = 0, no_message = 0, changed = 0, truncated_ok = 0, flips_ok = 0, flips = 0;
    for (size_t len = 0; len < size; len++) {
        unsigned char *buf = malloc(len ? len : 1);
        memcpy(buf, orig, len);
        cvis__npz z;
        cvis_status st = cvis__npz_read_mem(buf, len, &z);
        if (st == CVIS_OK) {
            truncated_ok++;
            cvis__npz_release(&z);
        } else {
            no_message += !cvis_last_error()[0];
            bad_status += st != CVIS_E_FORMAT && st != CVIS_E_UNSUPPORTED && st != CVIS_E_LIMIT;
        }
        free(buf);
    }
    unsigned char *buf = malloc(size);
    for (size_t pos = 0; pos < size; pos++) {
        /* Every bit of the first and last 128 bytes (headers), one bit elsewhere. */
        int all = pos < 128 || pos + 128 >= size;
        for (int bit = all ? 0 : (int)(pos % 8); bit < (all ? 8 : (int)(pos % 8) + 1); bit++) {
            memcpy(buf, orig, size);
            buf[pos] ^= (unsigned char)(1u << bit);
            flips++;
            cvis__npz z;
            cvis_status st = cvis__npz_read_mem(buf, size, &z);
            if (st == CVIS_OK) {
                flips_ok++;
                changed += !same_npz(&z, &ref);
                cvis__npz_release(&z);
            } else {
                no_message += !cvis_last_error()[0];
                bad_status += st != CVIS_E_FORMAT && st != CVIS_E_UNSUPPORTED && st != CVIS_E_LIMIT;
            }
        }
    }
    free(buf);
    printf("%s: %zu truncations (%d read), %d bit flips (%d read, all unchanged: %s)\n", what,
           size, truncated_ok, flips, flips_ok, changed ? "no" : "yes");
    CHECK(truncated_ok == 0);
    CHECK(no_message == 0);
    CHECK(bad_status == 0);
    CHECK(changed == 0);
    cvis__npz_release(&ref);
}

/* Offsets of the first member's local header and directory entry. */
static void first_entry(const unsigned char *d, size_t size, size_t *local, size_t *central)
{
    const unsigned char *e = d + size - 22;
    *local = 0;
    *central = (size_t)e[16] | (size_t)e[17] << 8 | (size_t)e[18] << 16 | (size_t)e[19] << 24;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Declared sizes that the file cannot justify are refused before allocating. */
static void test_huge(void)
{
    cvis_tensor *t = NULL;
    /* A .npy header declaring 2^60 elements over 24 bytes of data. */
    const float v[6] = {0};
    CHECK_STATUS(read_npy(1, "{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (1073741824, 1073741824), }", v, sizeof v, &t),
                 CVIS_E_FORMAT);

    /* The same inside a deflated member. */
    unsigned char npy[512];
    size_t nlen = make_npy(npy, 1, "{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (1073741824, 1024), }", v, sizeof v);
    cvis__zip_writer w;
    cvis__zip_writer_init(&w, NULL);
    CHECK_OK(cvis__zip_writer_begin(&w, "conv2d/kernel.npy", nlen));
    CHECK_OK(cvis__zip_writer_write(&w, npy, nlen));
    CHECK_OK(cvis__zip_writer_end(&w));
    CHECK_OK(cvis__zip_writer_finish(&w));
    void *data = NULL;
    size_t size = 0;
    cvis__zip_writer_take(&w, &data, &size);
    cvis__zip_writer_release(&w);
    cvis__npz z;
    CHECK_STATUS(cvis__npz_read_mem(data, size, &z), CVIS_E_FORMAT);
    CHECK(strstr(cvis_last_error(), "conv2d/kernel.npy") != NULL);

    /* A member whose ZIP sizes declare 2 GiB from a few hundred bytes: more
     * than deflate can expand. */
    unsigned char *d = data;
    size_t local, central;
    first_entry(d, size, &local, &central);
    put32(d + local + 22, 0x7FFFFFFFu);
    put32(d + central + 24, 0x7FFFFFFFu);
    CHECK_STATUS(cvis__npz_read_mem(data, size, &z), CVIS_E_FORMAT);
    cvis__free(data);

    /* Zeros compress 1000:1: a legitimate 4 MiB array in a small file is
     * refused by the allocation limit, before the allocation. */
    cvis_tensor *zeros = NULL;
    CHECK_OK(cvis_tensor_create(2, (int64_t[]){1024, 1024}, &zeros));
    const char *key = "zeros";
    CHECK_OK(cvis__npz_write_mem(1, &key, (const cvis_tensor *const *)&zeros, &data, &size));
    CHECK(size < 16384);
    uint64_t old = cvis_get_alloc_limit();
    CHECK_OK(cvis_set_alloc_limit(1 << 20));
    CHECK_STATUS(cvis__npz_read_mem(data, size, &z), CVIS_E_LIMIT);
    CHECK_OK(cvis_set_alloc_limit(old));
    CHECK_OK(cvis__npz_read_mem(data, size, &z));
    CHECK(z.n == 1 && same_tensor(z.arrays[0].value, zeros));
    cvis__npz_release(&z);
    /* A member declaring more than it inflates to, or less. */
    first_entry(data, size, &local, &central);
    unsigned char *dd = data;
    uint32_t real = (uint32_t)dd[central + 24] | (uint32_t)dd[central + 25] << 8 |
                    (uint32_t)dd[central + 26] << 16 | (uint32_t)dd[central + 27] << 24;
    for (int delta = -1; delta <= 1; delta += 2) {
        put32(dd + local + 22, real + (uint32_t)delta);
        put32(dd + central + 24, real + (uint32_t)delta);
        CHECK_STATUS(cvis__npz_read_mem(data, size, &z), CVIS_E_FORMAT);
    }
    cvis__free(data);
    cvis_tensor_free(zeros);
}

/* Every allocation in turn fails: a clean CVIS_E_NOMEM each time, no leak,
 * and for saving, no file changed and none left behind. */
static void test_alloc_failures(void)
{
    cvis_model *m = tiny_model(8), *other = tiny_model(9), *before = tiny_model(9);
    char path[128];
    path_in_tmp(path, sizeof path, "alloc.npz");
    CHECK_OK(cvis_model_save_npz(other, path));
    int files = count_tmp_files(), reads = 0, loads = 0, saves = 0, wrong = 0;
    for (int64_t n = 1; n < 10000; n++) {
        cvis__alloc_fail_after(n);
        cvis__npz z;
        cvis_status st = cvis__npz_read_mem(numpy_npz, sizeof numpy_npz, &z);
        cvis__alloc_fail_after(0);
        if (st == CVIS_OK) {
            cvis__npz_release(&z);
            break;
        }
        wrong += st != CVIS_E_NOMEM;
        reads++;
    }
    for (int64_t n = 1; n < 10000; n++) {
        cvis__alloc_fail_after(n);
        cvis_status st = cvis_model_save_npz(m, path);
        cvis__alloc_fail_after(0);
        if (st == CVIS_OK)
            break;
        wrong += st != CVIS_E_NOMEM;
        saves++;
        CHECK(count_tmp_files() == files);
        cvis_model *check = tiny_model(0);
        CHECK_OK(cvis_model_load_npz(check, path));  /* still the old file, whole */
        CHECK(same_weights(check, before));
        cvis_model_free(check);
    }
    CHECK(same_weights(m, m));
    for (int64_t n = 1; n < 10000; n++) {
        cvis__alloc_fail_after(n);
        cvis_status st = cvis_model_load_npz(other, path);
        cvis__alloc_fail_after(0);
        if (st == CVIS_OK)
            break;
        wrong += st != CVIS_E_NOMEM;
        loads++;
        CHECK(same_weights(other, before));
    }
    CHECK(same_weights(other, m));
    printf("allocation failures: %d in reading, %d in saving, %d in loading\n", reads, saves,
           loads);
    CHECK(reads > 5 && saves > 5 && loads > 5);
    CHECK(wrong == 0);
    unlink(path);
    cvis_model_free(m);
    cvis_model_free(other);
    cvis_model_free(before);
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

TEST_MAIN({
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cvis_npz_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_numpy_file();
    test_npy_headers();
    test_npy_writer();
    test_round_trip();
    test_zip64();
    test_model_errors();
    test_huge();
    test_alloc_failures();
    test_hostile(numpy_npz, sizeof numpy_npz, "numpy np.savez archive");
    {
        char path[128];
        path_in_tmp(path, sizeof path, "hostile.npz");
        cvis_model *m = tiny_model(10);
        CHECK_OK(cvis_model_save_npz(m, path));
        void *data = NULL;
        size_t size = 0;
        CHECK_OK(cvis__file_read(path, &data, &size));
        if (data)
            test_hostile(data, size, "libcvis archive");
        cvis__free(data);
        cvis_model_free(m);
    }
    remove_tmpdir();
})
