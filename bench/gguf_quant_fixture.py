"""Writes crates/ember/src/tensor/quant_reference.json: gguf-py's dequantization of GGML block
types, the reference Ember's GGUF tensor decoding (crates/ember/src/tensor/) is tested against.

For each of F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K and Q6_K: the raw bytes of two blocks (for F16 and
BF16, whose block is a single element, 64 elements), built from numpy RandomState(0) so that
every f16 scale field is a finite f16 of moderate size and every other byte is random, and the
f32 values `gguf.quants.dequantize` gives for them. Plus reference *quantization* of two blocks
of 32 floats to Q8_0 (gguf-py's `gguf.quants.quantize`) and to Q8_1 (computed by hand here,
following ggml's quantize_row_q8_1_ref; gguf-py has no Q8_1 quantizer). Each dequantized value
is also checked against a scalar transcription of ggml's C dequantize_row_* loops. Run with the
gguf venv:

    /tmp/gguf-venv/bin/python bench/gguf_quant_fixture.py
"""

import json
import pathlib

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/ember/src/tensor/quant_reference.json"

rng = np.random.RandomState(0)


def f16_scale(lo=0.001, hi=0.1, negative=False):
    """A moderate, finite f16 value as its 2 little-endian bytes."""
    v = np.float16(rng.uniform(lo, hi) * (-1.0 if negative else 1.0))
    assert np.isfinite(v) and v != 0
    return v.tobytes()


def rand_bytes(n):
    return rng.randint(0, 256, size=n, dtype=np.uint8).tobytes()


def make_f16():
    bits = rng.randint(0, 1 << 16, size=64).astype(np.uint16)
    # Clear one exponent bit where the exponent is all ones (inf/nan), so every value is finite.
    bits = np.where((bits & 0x7C00) == 0x7C00, bits & ~np.uint16(0x4000), bits).astype(np.uint16)
    # Fixed edge cases: +0, -0, smallest subnormal, largest subnormal, smallest normal, max, 1, -2.
    bits[:8] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x3C00, 0xC000]
    return bits.astype("<u2").tobytes()


def make_bf16():
    bits = rng.randint(0, 1 << 16, size=64).astype(np.uint16)
    bits = np.where((bits & 0x7F80) == 0x7F80, bits & ~np.uint16(0x4000), bits).astype(np.uint16)
    # +0, -0, smallest subnormal, smallest normal, max finite, 1, -2, pi (0x4049).
    bits[:8] = [0x0000, 0x8000, 0x0001, 0x0080, 0x7F7F, 0x3F80, 0xC000, 0x4049]
    return bits.astype("<u2").tobytes()


def make_q4_0():
    # block_q4_0: ggml_half d; uint8 qs[16]  (18 bytes, 32 elements)
    return b"".join(f16_scale(negative=(b == 1)) + rand_bytes(16) for b in range(2))


def make_q4_1():
    # block_q4_1: ggml_half d; ggml_half m; uint8 qs[16]  (20 bytes, 32 elements)
    return b"".join(f16_scale() + f16_scale(negative=True) + rand_bytes(16) for _ in range(2))


def make_q8_0():
    # block_q8_0: ggml_half d; int8 qs[32]  (34 bytes, 32 elements)
    return b"".join(f16_scale(negative=(b == 1)) + rand_bytes(32) for b in range(2))


def make_q4_k():
    # block_q4_K: ggml_half d; ggml_half dmin; uint8 scales[12]; uint8 qs[128]  (144 bytes, 256)
    return b"".join(f16_scale() + f16_scale() + rand_bytes(12) + rand_bytes(128) for _ in range(2))


def make_q6_k():
    # block_q6_K: uint8 ql[128]; uint8 qh[64]; int8 scales[16]; ggml_half d  (210 bytes, 256)
    return b"".join(rand_bytes(128) + rand_bytes(64) + rand_bytes(16) + f16_scale(negative=(b == 1))
                    for b in range(2))


# ---- scalar transcriptions of ggml-quants.c, used only to cross-check gguf-py -----------------

def h(b, off):
    return np.frombuffer(b[off:off + 2], dtype="<f2")[0].astype(np.float32)


def ref_q4_0(b):
    y = []
    for blk in range(len(b) // 18):
        x = b[blk * 18:(blk + 1) * 18]
        d = h(x, 0)
        qs = x[2:]
        lo = [np.float32((qs[j] & 0xF) - 8) * d for j in range(16)]
        hi = [np.float32((qs[j] >> 4) - 8) * d for j in range(16)]
        y += lo + hi
    return np.array(y, dtype=np.float32)


def ref_q4_1(b):
    y = []
    for blk in range(len(b) // 20):
        x = b[blk * 20:(blk + 1) * 20]
        d, m = h(x, 0), h(x, 2)
        qs = x[4:]
        lo = [np.float32(qs[j] & 0xF) * d + m for j in range(16)]
        hi = [np.float32(qs[j] >> 4) * d + m for j in range(16)]
        y += lo + hi
    return np.array(y, dtype=np.float32)


def ref_q8_0(b):
    y = []
    for blk in range(len(b) // 34):
        x = b[blk * 34:(blk + 1) * 34]
        d = h(x, 0)
        y += [np.float32(v) * d for v in np.frombuffer(x[2:], dtype=np.int8)]
    return np.array(y, dtype=np.float32)


def scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def ref_q4_k(b):
    y = []
    for blk in range(len(b) // 144):
        x = b[blk * 144:(blk + 1) * 144]
        d, dmin = h(x, 0), h(x, 2)
        scales, q = x[4:16], x[16:]
        for j in range(4):
            sc, m = scale_min_k4(2 * j, scales)
            d1, m1 = d * np.float32(sc), dmin * np.float32(m)
            sc, m = scale_min_k4(2 * j + 1, scales)
            d2, m2 = d * np.float32(sc), dmin * np.float32(m)
            qq = q[32 * j:32 * j + 32]
            y += [d1 * np.float32(v & 0xF) - m1 for v in qq]
            y += [d2 * np.float32(v >> 4) - m2 for v in qq]
    return np.array(y, dtype=np.float32)


def ref_q6_k(b):
    y = []
    for blk in range(len(b) // 210):
        x = b[blk * 210:(blk + 1) * 210]
        ql, qh = x[0:128], x[128:192]
        sc = np.frombuffer(x[192:208], dtype=np.int8).astype(np.float32)
        d = h(x, 208)
        out = [np.float32(0)] * 256
        for n in range(2):
            o, l0, h0, s0 = 128 * n, 64 * n, 32 * n, 8 * n
            for l in range(32):
                is_ = l // 16
                q1 = ((ql[l0 + l] & 0xF) | (((qh[h0 + l] >> 0) & 3) << 4)) - 32
                q2 = ((ql[l0 + l + 32] & 0xF) | (((qh[h0 + l] >> 2) & 3) << 4)) - 32
                q3 = ((ql[l0 + l] >> 4) | (((qh[h0 + l] >> 4) & 3) << 4)) - 32
                q4 = ((ql[l0 + l + 32] >> 4) | (((qh[h0 + l] >> 6) & 3) << 4)) - 32
                out[o + l] = d * sc[s0 + is_] * np.float32(q1)
                out[o + l + 32] = d * sc[s0 + is_ + 2] * np.float32(q2)
                out[o + l + 64] = d * sc[s0 + is_ + 4] * np.float32(q3)
                out[o + l + 96] = d * sc[s0 + is_ + 6] * np.float32(q4)
        y += out
    return np.array(y, dtype=np.float32)


def ref_f16(b):
    return np.frombuffer(b, dtype="<f2").astype(np.float32)


def ref_bf16(b):
    u = np.frombuffer(b, dtype="<u2").astype(np.uint32) << 16
    return u.view(np.float32)


def f32_record(v):
    v = np.asarray(v, dtype=np.float32)
    assert np.all(np.isfinite(v))
    return {
        # Exact: each is the f32 value printed as the shortest f64 repr (parse as f64, cast to f32).
        "values": [float(x) for x in v],
        "bits": [int(x) for x in v.view(np.uint32)],
    }


def main():
    makers = [
        ("F16", T.F16, make_f16, ref_f16),
        ("BF16", getattr(T, "BF16", None), make_bf16, ref_bf16),
        ("Q4_0", T.Q4_0, make_q4_0, ref_q4_0),
        ("Q4_1", T.Q4_1, make_q4_1, ref_q4_1),
        ("Q8_0", T.Q8_0, make_q8_0, ref_q8_0),
        ("Q4_K", T.Q4_K, make_q4_k, ref_q4_k),
        ("Q6_K", T.Q6_K, make_q6_k, ref_q6_k),
    ]
    dequant = {}
    for name, qtype, make, ref in makers:
        raw = make()  # always drawn, so the stream does not depend on BF16 support
        if qtype is None:
            print(f"skipping {name}: not in this gguf-py")
            continue
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        assert len(raw) % type_size == 0
        got = gguf.quants.dequantize(np.frombuffer(raw, dtype=np.uint8), qtype).astype(np.float32)
        got = got.reshape(-1)
        want = ref(raw)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), name
        dequant[name] = {
            "ggml_type": int(qtype),
            "block_size": block_size,
            "type_size": type_size,
            "n_blocks": len(raw) // type_size,
            "n_elements": int(got.size),
            "bytes_hex": raw.hex(),
            **f32_record(got),
        }

    # ---- quantization of 2 blocks of 32 floats ----
    x = (rng.standard_normal(64) * 0.7).astype(np.float32)
    x[5] = 0.0
    x[40] = -3.5  # block 1's largest magnitude is negative
    qx = {"input": f32_record(x)}

    # Q8_0: gguf-py's quantizer (bit-exact port of ggml's quantize_row_q8_0_ref).
    q8_0 = gguf.quants.quantize(x, T.Q8_0).tobytes()
    assert len(q8_0) == 2 * 34
    q8_0_deq = gguf.quants.dequantize(np.frombuffer(q8_0, dtype=np.uint8), T.Q8_0)
    qx["Q8_0"] = {
        "source": "gguf.quants.quantize",
        "type_size": 34,
        "bytes_hex": q8_0.hex(),
        "d_bits": [int(np.frombuffer(q8_0[34 * i:34 * i + 2], "<u2")[0]) for i in range(2)],
        "qs": [np.frombuffer(q8_0[34 * i + 2:34 * i + 34], np.int8).tolist() for i in range(2)],
        "dequantized": f32_record(q8_0_deq),
    }

    # Q8_1: by hand, following ggml's quantize_row_q8_1_ref (ggml-quants.c):
    #   amax = max|x|; d = amax / 127 (f32); id = d ? 1/d : 0 (f32); qs[j] = roundf(x[j]*id)
    #   (round half away from zero); sum = sum(qs) (int); y.d = fp16(d); y.s = fp16(sum * d),
    # with the f32 d, not the rounded f16 one. Block layout (ggml-common.h, block_q8_1):
    #   ggml_half d; ggml_half s; int8 qs[32] -> 36 bytes. (gguf-py's GGML_QUANT_SIZES lists
    #   Q8_1 as 4 + 4 + 32 = 40 bytes, the old f32 layout; current ggml asserts 36.)
    q8_1 = b""
    q8_1_qs, q8_1_d, q8_1_s, q8_1_sum = [], [], [], []
    for i in range(2):
        blk = x[32 * i:32 * i + 32]
        amax = np.float32(np.max(np.abs(blk)))
        d = np.float32(amax / np.float32(127))
        id_ = np.float32(1) / d if d != 0 else np.float32(0)
        v = (blk * id_).astype(np.float32)
        a = np.abs(v.astype(np.float64))
        q = (np.sign(v.astype(np.float64)) * np.floor(a + 0.5)).astype(np.int8)  # exact roundf
        s = int(q.astype(np.int64).sum())
        d16 = np.float16(d)
        s16 = np.float16(np.float32(np.float32(s) * d))
        q8_1 += d16.tobytes() + s16.tobytes() + q.tobytes()
        q8_1_qs.append(q.tolist())
        q8_1_d.append(int(d16.view(np.uint16)))
        q8_1_s.append(int(s16.view(np.uint16)))
        q8_1_sum.append(s)
    # Same d and qs as Q8_0, by construction of the two reference functions.
    assert q8_1_qs == qx["Q8_0"]["qs"] and q8_1_d == qx["Q8_0"]["d_bits"]
    qx["Q8_1"] = {
        "source": "by hand, following ggml quantize_row_q8_1_ref",
        "type_size": 36,
        "layout": "f16 d, f16 s, int8 qs[32]",
        "bytes_hex": q8_1.hex(),
        "d_bits": q8_1_d,
        "s_bits": q8_1_s,
        "d_values": [float(np.uint16(b).view(np.float16)) for b in q8_1_d],
        "s_values": [float(np.uint16(b).view(np.float16)) for b in q8_1_s],
        "qs_sum": q8_1_sum,
        "qs": q8_1_qs,
    }

    doc = {
        "generator": "bench/gguf_quant_fixture.py",
        "gguf_py_version": getattr(gguf, "__version__", None) or _dist_version(),
        "numpy_version": np.__version__,
        "seed": 0,
        "dequantize": dequant,
        "quantize": qx,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {', '.join(dequant)}; quantize Q8_0, Q8_1")


def _dist_version():
    from importlib.metadata import version

    return version("gguf")


if __name__ == "__main__":
    main()
