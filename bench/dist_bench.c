/* placeholder (issue 15): the tree-sum / allreduce latency and bandwidth benchmark */
#include <stdio.h>
int main(void) { return 1; }
