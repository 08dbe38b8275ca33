/* written by issue 14 (in progress) */
#include "comp4.h"
