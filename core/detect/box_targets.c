/* written by issue 14 (in progress) */
#include "box_targets.h"
