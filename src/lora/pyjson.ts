// Python's json.dumps(obj, indent=2, sort_keys=True) byte for byte, so the JSON files we write match what PEFT
// and Transformers write (ensure_ascii escapes, float repr like 0.0 and 1e-05).

/** A number Python holds as a float: written with a decimal point or exponent, as repr(float) does. */
export class PyFloat {
  constructor(readonly value: number) {}
}

export function pyFloat(v: number): PyFloat {
  return new PyFloat(v);
}

/** repr(float(v)): shortest round-trip digits (JS and Python agree on them), Python's notation rules. */
export function pyFloatRepr(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mant, expText] = v.toExponential().split('e');
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp < -4 || exp >= 16) {
    // Python: mantissa as shortest digits, exponent signed with at least two digits.
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  } else if (exp < 0) {
    body = `0.${'0'.repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    body = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return neg ? `-${body}` : body;
}

/** JSON string with ensure_ascii: everything outside printable ASCII escaped as \uXXXX (lower-case hex). */
function pyString(s: string): string {
  return JSON.stringify(s).replace(
    /[^\x20-\x7e]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function dump(v: unknown, level: number, indent: number, sortKeys: boolean): string {
  if (v === null || v === undefined) return 'null';
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isInteger(v)) return pyFloatRepr(v);
      return String(v);
    case 'string':
      return pyString(v);
    case 'object': {
      const pad = ' '.repeat(indent * (level + 1));
      const end = ' '.repeat(indent * level);
      if (Array.isArray(v)) {
        if (v.length === 0) return '[]';
        return `[\n${v.map((x) => pad + dump(x, level + 1, indent, sortKeys)).join(',\n')}\n${end}]`;
      }
      let entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) return '{}';
      // Python sorts str keys by code point; JS's default sort compares UTF-16 units: equal for the BMP.
      if (sortKeys) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const body = entries.map(([k, x]) => `${pad}${pyString(k)}: ${dump(x, level + 1, indent, sortKeys)}`);
      return `{\n${body.join(',\n')}\n${end}}`;
    }
    default:
      throw new Error(`pyJson: cannot serialise a ${typeof v}`);
  }
}

/** json.dumps(v, indent=2, sort_keys=True). Integral JS numbers are written as ints; wrap floats in PyFloat. */
export function pyJson(v: unknown, { indent = 2, sortKeys = true } = {}): string {
  return dump(v, 0, indent, sortKeys);
}
