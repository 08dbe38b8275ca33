/* written by issue 14 (in progress) */
#include "det_loss.h"
