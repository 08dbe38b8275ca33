#!/usr/bin/env python3
"""Write the seed corpora fuzz/corpus/<target>/ (small valid inputs, plus a
few near-misses) for fuzz_idx, fuzz_cifar10 and fuzz_voc, in the input
layouts the targets document. fuzz_jpeg's seeds come from gen_jpeg_seeds.c
(fuzz/make_seeds.sh builds and runs it). Deterministic: rerunning rewrites
the same files."""
import gzip, os, struct, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# ---- fuzz_idx: [u16 L][images][labels] ----
def idx_images(n, h=28, w=28, magic=0x803):
    return struct.pack(">IIII", magic, n, h, w) + bytes((i * 31 + i // 97) & 255 for i in range(n * h * w))

def idx_labels(n, magic=0x801):
    return struct.pack(">II", magic, n) + bytes(i % 10 for i in range(n))

def idx_input(img, lab):
    return struct.pack(">H", len(img)) + img + lab

put("fuzz_idx", "valid_2", idx_input(idx_images(2), idx_labels(2)))
put("fuzz_idx", "valid_1_gzip", idx_input(gzip.compress(idx_images(1), mtime=0), gzip.compress(idx_labels(1), mtime=0)))
put("fuzz_idx", "count_mismatch", idx_input(idx_images(2), idx_labels(3)))
put("fuzz_idx", "wrong_side", idx_input(idx_images(1, 27, 28), idx_labels(1)))

# ---- fuzz_cifar10: meta NUL switches 6*u16 files ----
META = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"

def record(label, salt):
    return bytes([label]) + bytes((k * 7 + salt * 13 + k // 32) & 255 for k in range(3072))

def cifar_input(meta, sw, files):
    head = meta + b"\0" + bytes([sw])
    for recs in files:
        head += struct.pack(">H", (len(recs) << 13) & 0xffff)
    return head + b"".join(b"".join(r) for r in files)

files = [[record((f + r) % 10, f * 3 + r) for r in range(1 + (f == 0))] for f in range(6)]
put("fuzz_cifar10", "valid_all_aug", cifar_input(META, 0x3f, files))
put("fuzz_cifar10", "valid_no_aug", cifar_input(META.replace(b"\n", b"\r\n"), 0, files))
put("fuzz_cifar10", "bad_label", cifar_input(META, 1, [[bytes([10]) + files[0][0][1:]]] + files[1:]))

# ---- fuzz_voc: [flag byte][xml] ----
def voc_xml(objs, w=353, h=500, extra=""):
    s = ("<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>000001.jpg</filename>\n"
         "\t<source><database>The VOC2007 Database</database></source>\n"
         f"\t<size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n\t<segmented>0</segmented>\n")
    for name, diff, box in objs:
        s += (f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Left</pose>\n\t\t<truncated>0</truncated>\n"
              f"\t\t<difficult>{diff}</difficult>\n\t\t<bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin>"
              f"<xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>\n{extra}\t</object>\n")
    return (s + "</annotation>\n").encode()

put("fuzz_voc", "two_objects", b"\0" + voc_xml([("dog", 0, (48, 240, 195, 371)), ("person", 1, (8, 12, 352, 498))]))
put("fuzz_voc", "keep_difficult", b"\1" + voc_xml([("dog", 0, (48, 240, 195, 371)), ("person", 1, (8, 12, 352, 498))]))
put("fuzz_voc", "parts", b"\0" + voc_xml([("person", 0, (1, 1, 100, 200))], extra=
    "\t\t<part><name>head</name><bndbox><xmin>10</xmin><ymin>5</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></part>\n"))
put("fuzz_voc", "float_coords", b"\0" + voc_xml([("car", 0, ("12.5", "3.0", "99.9", "40"))]))
put("fuzz_voc", "no_objects", b"\0" + voc_xml([]))
put("fuzz_voc", "bad_class", b"\0" + voc_xml([("unicorn", 0, (1, 1, 2, 2))]))
put("fuzz_voc", "entity", b"\0" + b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY e "dog">]>\n' + voc_xml([("&e;", 0, (1, 1, 2, 2))]))
print("seeds written under", root)
