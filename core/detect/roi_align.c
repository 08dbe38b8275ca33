/* written by issue 14 (in progress) */
#include "roi_align.h"
