#ifndef CBNN_COMP4_H
#define CBNN_COMP4_H
#endif
