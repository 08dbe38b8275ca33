#include <stdio.h>
int main(void) { puts("FAIL: test_bidet_conv not written yet"); return 1; }
