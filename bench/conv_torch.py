# torch fp32 conv forward/backward on the CIFAR-10 ResNet-18 3x3 shapes of
# bench/conv_throughput.c, per step (each shape times its count), median of
# reps after one warm-up: the torch column of bench/README.md ("fp32 conv
# backends"). Usage: /usr/bin/python3 bench/conv_torch.py THREADS BATCH REPS
import sys, time, torch
import torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1])); B = int(sys.argv[2]); reps = int(sys.argv[3])
L = [(3,32,64,1,1),(64,32,64,1,4),(64,32,128,2,1),(128,16,128,1,3),(128,16,256,2,1),(256,8,256,1,3),(256,8,512,2,1),(512,4,512,1,3)]
fw = bw = 0.0
for C,H,O,s,cnt in L:
    x = torch.randn(B,C,H,H,requires_grad=True); w = torch.randn(O,C,3,3,requires_grad=True)
    tf, tb = [], []
    for r in range(reps + 1):
        t0 = time.perf_counter(); y = F.conv2d(x, w, stride=s, padding=1); t1 = time.perf_counter()
        g = torch.randn_like(y)
        t2 = time.perf_counter(); y.backward(g); t3 = time.perf_counter()
        x.grad = None; w.grad = None
        if r: tf.append(t1-t0); tb.append(t3-t2)
    tf.sort(); tb.sort()
    fw += cnt*tf[len(tf)//2]; bw += cnt*tb[len(tb)//2]
print("torch %s per step: fwd %.1f ms, bwd %.1f ms" % (torch.__version__, 1e3*fw, 1e3*bw))
