#ifndef CBNN_VOC_AP_H
#define CBNN_VOC_AP_H
#endif
