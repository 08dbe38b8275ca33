#include <stdio.h>
int main(void) { puts("FAIL: test_det_loss not written yet"); return 1; }
