/* written by issue 14 (in progress) */
#include "bidet_conv.h"
