/* written by issue 14 (in progress) */
#include "boxes.h"
