# weights_close.py A B TOL [SKIP...]: the worst relative difference between the --save folders A
# and B (every *.f32 of A, read as float32; relative to max(|b|, 1e-2 * the tensor's largest |b|)),
# printed; exit status 0 when it is at most TOL. A file whose path contains one of SKIP... is left
# out (batch-norm statistics, a gradient that is zero in exact arithmetic).
import array, glob, os, sys
worst, n = 0.0, 0
for f in sorted(glob.glob(sys.argv[1] + "/*.f32")):
    if any(s in f for s in sys.argv[4:]): continue
    a = array.array("f"); a.frombytes(open(f, "rb").read())
    b = array.array("f"); b.frombytes(open(os.path.join(sys.argv[2], os.path.basename(f)), "rb").read())
    scale = max(abs(y) for y in b) or 1.0
    for x, y in zip(a, b):
        worst = max(worst, abs(x - y) / max(abs(y), 1e-2 * scale)); n += 1
print("worst relative difference %.3g over %d weights" % (worst, n))
sys.exit(0 if n > 0 and worst <= float(sys.argv[3]) else 1)
