/* written by issue 14 (in progress) */
#include "voc_ap.h"
