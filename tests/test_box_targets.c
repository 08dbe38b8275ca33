#include <stdio.h>
int main(void) { puts("FAIL: test_box_targets not written yet"); return 1; }
