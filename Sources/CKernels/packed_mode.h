#ifndef AIOT_PACKED_MODE_H
#define AIOT_PACKED_MODE_H
#include "CKernels.h"

/// How a packed product stores its outputs, one specialization each (shared by the 256-bit body
/// and the 512-bit AVX-512 file): 0 int32 rows; 1 int16 plain rows; 3 the pair layout of the
/// result (AIOT_Y16_COL_PAIRS); 4 the pair layout of the transpose with y16col = 2
/// (AIOT_Y16_ROW_PAIRS, two rows interleaved); 2 anything else, element by element.
static inline int aiot_packed_mode(const int16_t *y16, long y16col, int layout) {
    return !y16 ? 0
         : (layout == AIOT_Y16_PLAIN && y16col == 1) ? 1
         : layout == AIOT_Y16_COL_PAIRS ? 3
         : (layout == AIOT_Y16_ROW_PAIRS && y16col == 2) ? 4 : 2;
}
#endif
