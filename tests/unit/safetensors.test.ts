// The strict safetensors reader against every malformed fixture, lazy range reads, dtype conversions, and the writer.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bf16ToF32 } from '../../src/gpu/context';
import type { RangeReader, TensorToWrite } from '../../src/model/safetensors';
import {
  aligned,
  f32ToBf16,
  f32ToF16,
  memoryReader,
  readSafetensorsHeader,
  SafetensorsFile,
  toF32,
  writeSafetensors,
} from '../../src/model/safetensors';
import { fixture, hasFixtures } from '../helpers/fixtures';

const fileReader = (path: string): RangeReader =>
  memoryReader(path.split('/').pop()!, readFileSync(fixture(path)));

describe.skipIf(!hasFixtures)('safetensors reader: malformed files', () => {
  const cases: [string, RegExp][] = [
    ['header_len_past_eof', /header length 1000000000000 runs past the end of the file/],
    ['header_len_too_long', /header is not valid UTF-8 JSON/],
    ['shorter_than_8_bytes', /3 bytes: too short/],
    ['header_not_json', /header is not valid UTF-8 JSON/],
    ['offsets_out_of_range', /tensor "b": data_offsets \[24, 56\] run past the end of the data \(40 bytes/],
    ['offsets_overlap', /tensor "b" \[16, 32\] overlaps tensor "a" \[0, 24\]/],
    ['offsets_reversed', /tensor "b": data_offsets \[40, 24\] are reversed/],
    ['shape_size_mismatch', /tensor "a": shape \[2,4\] F32 is 32 bytes but data_offsets span 24/],
    ['unknown_dtype', /tensor "b": unsupported dtype "Q4_K"/],
    ['stories260K_truncated', /run past the end of the data .*truncated/],
  ];
  for (const [name, want] of cases) {
    it(`rejects ${name}, naming the file`, async () => {
      const file = `${name}.safetensors`;
      const err = await readSafetensorsHeader(fileReader(`malformed/models/${file}`)).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(want);
      expect((err as Error).message.startsWith(`${file}: `)).toBe(true);
    });
  }

  it('reads the positive control tiny_valid', async () => {
    const f = await SafetensorsFile.open(fileReader('malformed/models/tiny_valid.safetensors'));
    expect(f.header.metadata).toEqual({ format: 'pt' });
    expect(f.names).toEqual(['a', 'b']);
    expect(f.info('a')).toMatchObject({ dtype: 'F32', shape: [2, 3], begin: 0, end: 24 });
    expect([...(await f.f32('a'))]).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...(await f.f32('b'))]).toEqual([1, 1, 1, 1]);
    await expect(f.bytes('c')).rejects.toThrow(/tiny_valid.safetensors: no tensor "c"/);
  });
});

describe('safetensors reader: strictness without fixtures', () => {
  const build = (header: object, dataBytes: number) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return memoryReader('x.safetensors', out);
  };

  it('rejects a gap between tensors and trailing data', async () => {
    const gap = build(
      {
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        b: { dtype: 'U8', shape: [2], data_offsets: [6, 8] },
      },
      8,
    );
    await expect(readSafetensorsHeader(gap)).rejects.toThrow(/gap in the data before tensor "b"/);
    const trailing = build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 6);
    await expect(readSafetensorsHeader(trailing)).rejects.toThrow(
      /data section is 6 bytes but the tensors cover 4/,
    );
  });

  it('rejects non-integer shapes and non-string metadata', async () => {
    const frac = build({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4);
    await expect(readSafetensorsHeader(frac)).rejects.toThrow(/tensor "a": shape \[1.5\]/);
    const meta = build({ __metadata__: { n: 1 } }, 0);
    await expect(readSafetensorsHeader(meta)).rejects.toThrow(/__metadata__.n is not a string/);
  });

  it('accepts integer headers (I64, U8) and refuses to widen them to f32', async () => {
    const r = build(
      {
        i: { dtype: 'I64', shape: [1], data_offsets: [0, 8] },
        u: { dtype: 'U8', shape: [3], data_offsets: [8, 11] },
      },
      11,
    );
    const f = await SafetensorsFile.open(r);
    expect(f.info('u').shape).toEqual([3]);
    await expect(f.f32('i')).rejects.toThrow(/x.safetensors: tensor "i" is I64, not a float type/);
  });

  it('reads only the header when opened, and one range per tensor', async () => {
    const data = writeSafetensors(
      [{ name: 'w', dtype: 'F32', shape: [1000], data: new Uint8Array(4000) }],
      {},
    );
    const inner = memoryReader('big.safetensors', data);
    const reads: [number, number][] = [];
    const counting: RangeReader = {
      name: inner.name,
      size: inner.size,
      read: (s, e) => (reads.push([s, e]), inner.read(s, e)),
    };
    const f = await SafetensorsFile.open(counting);
    const headerEnd = f.header.dataStart;
    expect(reads).toEqual([
      [0, 8],
      [8, headerEnd],
    ]);
    await f.bytes('w');
    expect(reads[2]).toEqual([headerEnd, headerEnd + 4000]);
  });
});

describe('dtype conversions', () => {
  const bits16 = (xs: number[], conv: (a: Float32Array) => Uint16Array) => [...conv(new Float32Array(xs))];

  it('f32 → bf16 rounds to nearest even', () => {
    // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even mantissa (1) wins; 1 + 3·2^-8 ties up to 1 + 2^-6.
    expect(bits16([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -2], f32ToBf16)).toEqual([
      0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc000,
    ]);
    expect(bits16([Infinity, 3.4e38], f32ToBf16)).toEqual([0x7f80, 0x7f80]);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(new Float32Array([NaN])))[0])).toBe(true);
  });

  it('f32 → f16 rounds to nearest even, overflows to Inf, keeps subnormals', () => {
    expect(
      bits16(
        [1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, -0],
        f32ToF16,
      ),
    ).toEqual([0x3c00, 0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001, 0x0400, 0x8000]);
    expect(bits16([NaN, -Infinity], f32ToF16)).toEqual([0x7e00, 0xfc00]);
  });

  it('widening f16 and bf16 to f32 is exact', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bytes = new Uint8Array(all.buffer);
    const f16 = toF32('F16', bytes);
    const back = f32ToF16(f16);
    const bf = toF32('BF16', bytes);
    const backBf = f32ToBf16(bf);
    const bad: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const nan16 = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      const nanBf = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      if ((!nan16 && back[i] !== i) || (!nanBf && backBf[i] !== i)) bad.push(i);
    }
    expect(bad).toEqual([]);
  });
});

describe('safetensors writer', () => {
  it('round-trips tensors, sorted by dtype size then name, header padded to 8', async () => {
    const t = (name: string, dtype: TensorToWrite['dtype'], shape: number[], n: number): TensorToWrite => ({
      name,
      dtype,
      shape,
      data: new Uint8Array(n).map((_, i) => (i * 7 + name.length) & 255),
    });
    const tensors = [
      t('z', 'F32', [2], 8),
      t('b', 'BF16', [3], 6),
      t('a', 'U8', [5], 5),
      t('y', 'I64', [1], 8),
    ];
    const out = writeSafetensors(tensors, { format: 'pt' });
    const hlen = Number(new DataView(out.buffer).getBigUint64(0, true));
    expect(hlen % 8).toBe(0);
    const f = await SafetensorsFile.open(memoryReader('w.safetensors', out));
    expect(f.names).toEqual(['y', 'z', 'b', 'a']);
    expect(Object.keys(JSON.parse(new TextDecoder().decode(out.subarray(8, 8 + hlen))))[0]).toBe(
      '__metadata__',
    );
    for (const x of tensors) expect(await f.bytes(x.name)).toEqual(x.data);
  });

  it('refuses data that does not match the shape, and duplicate names', () => {
    expect(() =>
      writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(4) }]),
    ).toThrow(/tensor "a": shape \[2\] F32 needs 8 bytes, got 4/);
    const a = { name: 'a', dtype: 'U8' as const, shape: [1], data: new Uint8Array(1) };
    expect(() => writeSafetensors([a, a])).toThrow(/"a" given twice/);
  });

  it.skipIf(!hasFixtures)('writes tiny_valid.safetensors byte for byte', async () => {
    const want = readFileSync(fixture('malformed/models/tiny_valid.safetensors'));
    const a = new Float32Array([0, 1, 2, 3, 4, 5]);
    const b = new Float32Array([1, 1, 1, 1]);
    const out = writeSafetensors(
      [
        { name: 'b', dtype: 'F32', shape: [4], data: new Uint8Array(b.buffer) },
        { name: 'a', dtype: 'F32', shape: [2, 3], data: new Uint8Array(a.buffer) },
      ],
      { format: 'pt' },
    );
    expect(Buffer.from(out).equals(want)).toBe(true);
  });

  for (const variant of ['stories260K-hf', 'stories260K-hf-bf16', 'gpt2-tiny-random']) {
    it.skipIf(!hasFixtures)(`rewrites ${variant}/model.safetensors byte for byte`, async () => {
      const path = `models/${variant}/model.safetensors`;
      const f = await SafetensorsFile.open(fileReader(path));
      const tensors: TensorToWrite[] = [];
      for (const name of f.names) {
        const i = f.info(name);
        tensors.push({ name, dtype: i.dtype, shape: i.shape, data: await f.bytes(name) });
      }
      const out = writeSafetensors(tensors.reverse(), f.header.metadata);
      expect(Buffer.from(out).equals(readFileSync(fixture(path)))).toBe(true);
    });
  }

  it.skipIf(!hasFixtures)(
    'the bf16 and f16 fixtures are the f32 weights rounded to nearest even',
    async () => {
      const f32 = await SafetensorsFile.open(fileReader('models/stories260K-hf/model.safetensors'));
      const bf = await SafetensorsFile.open(fileReader('models/stories260K-hf-bf16/model.safetensors'));
      const h = await SafetensorsFile.open(fileReader('models/stories260K-hf-f16/model.safetensors'));
      for (const name of f32.names) {
        const x = await f32.f32(name);
        const same = (a: Uint16Array, b: Uint16Array) =>
          a.length === b.length && a.every((v, i) => v === b[i]);
        expect(same(new Uint16Array(aligned(await bf.bytes(name))), f32ToBf16(x)), `${name} bf16`).toBe(true);
        expect(same(new Uint16Array(aligned(await h.bytes(name))), f32ToF16(x)), `${name} f16`).toBe(true);
      }
    },
  );
});
