// Readers and format detection: every file kind (streamed in tiny chunks too), the malformed fixtures, and bad files.
import { openAsBlob } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openRecords } from '../../src/data/readers';
import { DataError, detectFormat, type DatasetReport, type RawRecord } from '../../src/data/index';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import { fixtureTokenizer, readAllExamples, tempFile, trickle, writeParquet } from './data-helpers';

const enc = (s: string) => new TextEncoder().encode(s);

async function records(src: Uint8Array | AsyncIterable<Uint8Array>, name: string): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of (await openRecords(src, name)).records) out.push(r);
  return out;
}

describe('readers on generated files (whole and in 7-byte chunks)', () => {
  const cases: [string, string, unknown[]][] = [
    [
      'a.jsonl',
      '{"text": "one"}\n\n  \n{"text": "two"}\r\n{"text": "x"}',
      [{ text: 'one' }, { text: 'two' }, { text: 'x' }],
    ],
    ['a.json', ' [ {"text": "one"}, {"text": "t\\"w]o"} ]', [{ text: 'one' }, { text: 't"w]o' }]],
    [
      'b.json',
      '{"version": 1, "meta": {"a": [1]}, "data": [{"text": "é"}, {"text": "b"}]}',
      [{ text: 'é' }, { text: 'b' }],
    ],
    ['c.json', '{"text": "one"}\n{"text": "two"}\n', [{ text: 'one' }, { text: 'two' }]],
    [
      'a.csv',
      'prompt,completion\n"say ""hi""","multi\nline"\nx,y\n',
      [
        { prompt: 'say "hi"', completion: 'multi\nline' },
        { prompt: 'x', completion: 'y' },
      ],
    ],
    ['a.tsv', 'text\tid\nhello, world\t1\n', [{ text: 'hello, world', id: '1' }]],
    [
      'a.txt',
      'First para\nline two.\n\n\n\nSecond.\n',
      [{ text: 'First para\nline two.' }, { text: 'Second.' }],
    ],
    ['a.md', '# Title\n\nBody text.', [{ text: '# Title' }, { text: 'Body text.' }]],
  ];
  for (const [name, content, expected] of cases) {
    it(`${name}`, async () => {
      for (const src of [enc(content), trickle(enc(content))]) {
        const recs = await records(src, name);
        expect(recs.map((r) => r.error)).toEqual(expected.map(() => undefined));
        expect(recs.map((r) => r.value)).toEqual(expected);
      }
    });
  }

  it('numbers rows and lines: JSONL line numbers count blank lines, CSV lines count quoted newlines', async () => {
    const j = await records(enc('{"text":"a"}\n\n{"text":"b"}\n'), 'x.jsonl');
    expect(j.map((r) => [r.row, r.line])).toEqual([
      [1, 1],
      [2, 3],
    ]);
    const c = await records(enc('text\n"a\nb"\nc\n'), 'x.csv');
    expect(c.map((r) => [r.row, r.line])).toEqual([
      [1, 2],
      [2, 4],
    ]);
    const a = await records(enc('[\n {"text": "a"},\n\n {"text": "b"}\n]'), 'x.json');
    expect(a.map((r) => [r.row, r.line])).toEqual([
      [1, 2],
      [2, 4],
    ]);
  });

  it('reads Parquet (via Blob.slice) with the same rows', async () => {
    const bytes = writeParquet(
      ['instruction', 'output'],
      [
        ['Say hi', 'Hi!'],
        ['Count', '1 2 3 é'],
      ],
    );
    const p = tempFile('a.parquet', bytes);
    const recs: RawRecord[] = [];
    for await (const r of (await openRecords(await openAsBlob(p), 'a.parquet')).records) recs.push(r);
    expect(recs).toEqual([
      { row: 1, value: { instruction: 'Say hi', output: 'Hi!' } },
      { row: 2, value: { instruction: 'Count', output: '1 2 3 é' } },
    ]);
  });

  it('rejects empty, whitespace-only, binary, gzip and unknown files with a message that says so', async () => {
    const bad: [string, Uint8Array, RegExp][] = [
      ['e.jsonl', new Uint8Array(0), /empty/],
      ['w.txt', enc(' \n\n \n'), /only whitespace/],
      ['b.jsonl', Uint8Array.from([0x7b, 0, 1, 2, 0, 0, 9]), /binary/],
      ['g.csv', Uint8Array.from([0x1f, 0x8b, 8, 0]), /gzip/],
      ['x.xlsx', enc('a'), /unknown file extension ".xlsx".*\.jsonl/],
      ['noext', enc('a'), /unknown file extension \(none\)/],
      ['p.parquet', enc('{"text":"a"}'), /not a Parquet file/],
      ['n.json', enc('"just a string"'), /expected '\['/],
      ['o.json', enc('{"a": 1, "b": {"c": 2}}'), /holds no array of rows/],
    ];
    for (const [name, bytes, msg] of bad) await expect(records(bytes, name), name).rejects.toThrow(msg);
  });

  it('reports a bad JSON element as one skipped row and a truncated array as its last row', async () => {
    const recs = await records(enc('[{"text": "a"}, {"text": "b",}, {"text": "c"}, {"text": "d'), 'x.json');
    expect(recs.map((r) => r.value ?? 'ERR')).toEqual([{ text: 'a' }, 'ERR', { text: 'c' }, 'ERR']);
    expect(recs[1].error).toMatch(/not valid JSON/);
    expect(recs[3].error).toMatch(/ends inside this row/);
  });
});

describe('format detection', () => {
  it('detects each format from its columns, by majority over the first rows', () => {
    expect(detectFormat([{ text: 'a' }], 'f')).toBe('text');
    expect(detectFormat([{ instruction: 'a', input: '', output: 'b' }], 'f')).toBe('alpaca');
    expect(detectFormat([{ prompt: 'a', completion: 'b' }], 'f')).toBe('prompt-completion');
    expect(detectFormat([{ messages: [] }], 'f')).toBe('chat');
    expect(detectFormat([{ conversations: [] }], 'f')).toBe('chat');
    expect(detectFormat([{ input_ids: [1], labels: [1] }], 'f')).toBe('tokenized');
    expect(detectFormat([{ prompt: 'a' }, { text: 'x' }, { text: 'y' }], 'f')).toBe('text');
  });
  it('lists the columns found and the formats expected when nothing fits', () => {
    expect(() => detectFormat([{ question: 1, answer: 2 }], 'f.json')).toThrow(
      /f\.json: the rows fit no known format \(columns found: "question", "answer"\)[\s\S]*alpaca: instruction, output/,
    );
  });
});

const D = 'datasets/';
const MD = 'malformed/datasets/';
describe.skipIf(!hasFixtures)(`fixture datasets${hasFixtures ? '' : ` (${NO_FIXTURES})`}`, () => {
  const tok = () => fixtureTokenizer('stories260K-hf');
  const run = async (path: string) =>
    readAllExamples(await openAsBlob(fixture(path)), path.split('/').pop()!, tok());
  const failure = async (path: string) => {
    try {
      await run(path);
    } catch (e) {
      expect(e).toBeInstanceOf(DataError);
      return e as DataError;
    }
    throw new Error(`${path} was accepted`);
  };
  const summary = (r: DatasetReport) => [r.format, r.rowsRead, r.rowsUsed, r.skipped.length];

  it('reads every good dataset in full, with the row counts of the README', async () => {
    expect(summary((await run(`${D}alpaca_sample.json`)).report)).toEqual(['alpaca', 151, 151, 0]);
    expect(summary((await run(`${D}alpaca_seed_tasks.json`)).report)).toEqual(['alpaca', 175, 175, 0]);
    expect(summary((await run(`${D}chat_sample.jsonl`)).report)).toEqual(['chat', 383, 383, 0]);
    expect(summary((await run(`${D}prompt_completion_sample.jsonl`)).report)).toEqual([
      'prompt-completion',
      969,
      969,
      0,
    ]);
    expect(summary((await run(`${D}text_sample.txt`)).report)).toEqual(['text', 1230, 1230, 0]);
  });

  it('skips bad lines with their numbers and reasons', async () => {
    const t = (await run(`${MD}chat_truncated.jsonl`)).report;
    expect(summary(t)).toEqual(['chat', 6, 5, 1]);
    expect(t.skipped[0]).toMatchObject({ line: 6, reason: expect.stringMatching(/not valid JSON/) });
    const c = (await run(`${MD}trailing_comma.jsonl`)).report;
    expect(c.skipped.map((s) => s.line)).toEqual([2]);
    const u = (await run(`${MD}non_utf8.jsonl`)).report;
    expect(u.skipped.map((s) => [s.line, s.reason])).toEqual([
      [2, 'invalid UTF-8: byte 0xE9 at column 18'],
      [3, 'invalid UTF-8: byte 0xFF at column 13'],
    ]);
    expect(u.rowsUsed).toBe(1);
  });

  it('accepts BOM + CRLF and blank lines', async () => {
    expect(summary((await run(`${MD}bom_crlf.jsonl`)).report)).toEqual(['prompt-completion', 4, 4, 0]);
    const b = (await run(`${MD}blank_lines.jsonl`)).report;
    expect(summary(b)).toEqual(['prompt-completion', 3, 3, 0]);
  });

  it('reads an object holding the rows array (alpaca_not_array.json) as the issue asks', async () => {
    const r = (await run(`${MD}alpaca_not_array.json`)).report;
    expect(r.format).toBe('alpaca');
    expect(r.rowsUsed).toBeGreaterThan(0);
    expect(r.skipped).toEqual([]);
  });

  it('rejects the truncated JSON array (its one row is cut): a parse error that says so', async () => {
    const e = await failure(`${MD}alpaca_truncated.json`);
    expect(e.message).toMatch(
      /not valid JSON: the file ends inside this row \(truncated\?\) at row 1 \(line 2\)/,
    );
  });

  it('rejects files whose rows fit no format, listing the columns', async () => {
    expect((await failure(`${MD}chat_wrong_fields.jsonl`)).message).toMatch(/columns found: "msgs"/);
    expect((await failure(`${MD}alpaca_wrong_fields.json`)).message).toMatch(
      /"question", "context", "answer"/,
    );
  });

  it('rejects files with no usable row, each bad row listed with its reason', async () => {
    const e = await failure(`${MD}chat_bad_values.jsonl`);
    expect(e.message).toMatch(/no usable row: 7 read as chat, all skipped/);
    expect(e.skipped.map((s) => [s.line, s.reason])).toEqual([
      [1, expect.stringMatching(/message 2: role "robot" is not one the template can take/)],
      [2, expect.stringMatching(/message 2 \(assistant\): content must be a string, got number/)],
      [3, expect.stringMatching(/"messages" is empty/)],
      [4, expect.stringMatching(/no assistant message/)],
      [5, expect.stringMatching(/message 2: a system message must come first/)],
      [6, expect.stringMatching(/message 1 \(user\) has no content/)],
      [7, expect.stringMatching(/"messages" must be a list of messages, got string/)],
    ]);
    const w = await failure(`${MD}prompt_completion_wrong_types.jsonl`);
    expect(w.skipped.map((s) => s.reason)).toEqual([
      '"prompt" must be a string, got a list',
      '"completion" must be a string, got null',
      'missing field "completion"',
    ]);
    expect((await failure(`${MD}empty.jsonl`)).message).toMatch(/empty.*no rows/);
  });

  it('skips the paragraph of a text file that is not UTF-8, and says where', async () => {
    const e = await failure(`${MD}non_utf8.txt`);
    expect(e.skipped).toEqual([{ row: 1, line: 1, reason: 'line 1: invalid UTF-8: byte 0xE9 at column 33' }]);
  });
});
