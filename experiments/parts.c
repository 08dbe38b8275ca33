/* experiments/parts.h (placeholder) */
#include "parts.h"
