/* written by issue 14 (in progress) */
#include "detect_batch.h"
