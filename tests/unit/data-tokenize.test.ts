// Tokenization, chat templates and masking against the fixture tokenizers: trained tokens are exactly the completions + EOS.
import { openAsBlob, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeSample, TextTokenizer, type Example, type Sample } from '../../src/data/index';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import { fixtureTokenizer, readAllExamples, trainedRuns } from './data-helpers';

const ok = (tok: TextTokenizer, s: Sample, o = {}): Example => {
  const r = encodeSample(tok, s, 1, o);
  if ('error' in r) throw new Error(r.error);
  return r.example;
};

describe.skipIf(!hasFixtures)(`fixture tokenizers${hasFixtures ? '' : ` (${NO_FIXTURES})`}`, () => {
  // Built in beforeAll: a skipped suite's body still runs when tests are collected.
  let stories!: TextTokenizer;
  let gpt2!: TextTokenizer;
  beforeAll(() => {
    stories = fixtureTokenizer('stories260K-hf');
    gpt2 = fixtureTokenizer('gpt2-tiny-random');
  });

  it('encodes the published stories260K examples exactly (with BOS)', () => {
    const ref = JSON.parse(readFileSync(fixture('models/stories260K-reference.json'), 'utf8')) as {
      encode_examples: Record<string, number[]>;
    };
    expect(Object.keys(ref.encode_examples).length).toBeGreaterThan(10);
    for (const [text, ids] of Object.entries(ref.encode_examples))
      expect(stories.encode(text, true), text).toEqual(ids);
    expect(stories.addsBos).toBe(true);
    expect([stories.bosId, stories.eosId]).toEqual([1, 2]);
  });

  it('encodes the published GPT-2 examples exactly (no BOS)', () => {
    const ref = JSON.parse(readFileSync(fixture('models/gpt2-tiny-random-reference.json'), 'utf8')) as {
      tokenizer_examples: Record<string, number[]>;
    };
    for (const [text, ids] of Object.entries(ref.tokenizer_examples))
      expect(gpt2.encode(text, true), text).toEqual(ids);
    expect(gpt2.addsBos).toBe(false);
    expect(gpt2.eosId).toBe(50256);
  });

  it('renders the fixture chat template exactly as the README gives it', () => {
    const msgs = [
      { role: 'system', content: 'You are a storyteller.' },
      { role: 'user', content: 'Tell me a story.' },
      { role: 'assistant', content: 'Once upon a time.' },
      { role: 'user', content: 'More!' },
    ] as const;
    expect(stories.renderChat([...msgs], true)).toBe(
      '<s>You are a storyteller.\n\nUser: Tell me a story.\nAssistant: Once upon a time.</s>\nUser: More!\nAssistant:',
    );
    // Special tokens inside rendered text, tokenized without added specials (README).
    expect(stories.encode('<s>User: Hi!\nAssistant: Hello.</s>\nUser: More!\nAssistant:', false)).toEqual([
      1, 410, 471, 419, 285, 467, 320, 417, 443, 13, 447, 419, 419, 293, 413, 303, 413, 467, 346, 306, 414,
      426, 2, 410, 13, 471, 419, 285, 467, 392, 414, 276, 443, 13, 447, 419, 419, 293, 413, 303, 413, 467,
    ]);
  });

  it('masks a chat: ids are the rendered template; trained runs decode to each assistant reply + EOS', () => {
    const e = ok(stories, {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'You are a storyteller.' },
        { role: 'user', content: 'Hi!' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'More!' },
        { role: 'assistant', content: 'Yes' },
      ],
    });
    const text =
      '<s>You are a storyteller.\n\nUser: Hi!\nAssistant: Hello.</s>\nUser: More!\nAssistant: Yes</s>\n';
    expect(Array.from(e.inputIds)).toEqual(stories.encode(text, false));
    expect(trainedRuns(e).map((r) => stories.decode(r))).toEqual(['Hello.</s>', 'Yes</s>']);
    // --train-on-prompt: everything but position 0 (which nothing predicts).
    const all = ok(
      stories,
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Hi!' },
          { role: 'assistant', content: 'Yo' },
        ],
      },
      { trainOnPrompt: true },
    );
    expect(all.labels[0]).toBe(-100);
    expect(Array.from(all.labels.subarray(1))).toEqual(Array.from(all.inputIds.subarray(1)));
  });

  it('uses the documented plain template for a model without one (GPT-2) and masks it exactly', () => {
    expect(gpt2.hasOwnTemplate).toBe(false);
    const msgs = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Hello world' },
      { role: 'assistant' as const, content: 'Hi there, friend!' },
    ];
    const text = 'Be brief.\n\n### User:\nHello world\n\n### Assistant:\nHi there, friend!<|endoftext|>\n\n';
    expect(gpt2.renderChat(msgs)).toBe(text);
    const e = ok(gpt2, { kind: 'chat', messages: msgs });
    expect(Array.from(e.inputIds)).toEqual(gpt2.encode(text, false));
    expect(trainedRuns(e).map((r) => gpt2.decode(r))).toEqual(['Hi there, friend!<|endoftext|>']);
  });

  it('prompt-completion: prompt + completion + EOS, only the completion and EOS trained', () => {
    const e = ok(gpt2, {
      kind: 'prompt-completion',
      prompt: 'Once upon a time',
      completion: ' there was a cat.',
    });
    expect(Array.from(e.inputIds)).toEqual([
      ...gpt2.encode('Once upon a time there was a cat.', true),
      50256,
    ]);
    expect(trainedRuns(e).map((r) => gpt2.decode(r))).toEqual([' there was a cat.<|endoftext|>']);
  });

  it('text: BOS + text + EOS, all trained', () => {
    const e = ok(stories, { kind: 'text', text: 'the the the' });
    expect(Array.from(e.inputIds)).toEqual([1, 265, 265, 265, 2]);
    expect(Array.from(e.labels)).toEqual([-100, 265, 265, 265, 2]);
  });

  it('truncates to max-len, and reports a row whose completion would be cut away entirely', () => {
    const s: Sample = {
      kind: 'prompt-completion',
      prompt: 'Once upon a time, there was',
      completion: ' a cat.',
    };
    const full = ok(stories, s);
    const r = encodeSample(stories, s, 1, { maxLen: full.inputIds.length - 1 });
    expect('example' in r && r.truncated && r.example.inputIds.length === full.inputIds.length - 1).toBe(
      true,
    );
    const cut = encodeSample(stories, s, 1, { maxLen: 4 });
    expect('error' in cut && cut.error).toMatch(/no trained token left after truncation to 4 tokens/);
  });

  it('tokenized rows: labels kept (-100 not trained), ids outside the vocabulary rejected', () => {
    const e = ok(stories, {
      kind: 'tokenized',
      inputIds: [1, 403, 407, 261],
      labels: [-100, -100, 407, 261],
    });
    expect(Array.from(e.labels)).toEqual([-100, -100, 407, 261]);
    const bad = encodeSample(stories, { kind: 'tokenized', inputIds: [1, 9999] }, 1);
    expect('error' in bad && bad.error).toMatch(/9999, outside the vocabulary \(size 512\)/);
  });

  it('a role the template refuses (raise_exception) skips the row with the template message', () => {
    const config = JSON.parse(readFileSync(fixture('models/stories260K-hf/tokenizer_config.json'), 'utf8'));
    config.chat_template =
      "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m['content'] }}{% endfor %}";
    const tok = new TextTokenizer({
      tokenizerJson: readFileSync(fixture('models/stories260K-hf/tokenizer.json'), 'utf8'),
      tokenizerConfig: JSON.stringify(config),
    });
    const r = encodeSample(
      tok,
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      },
      1,
    );
    expect('error' in r && r.error).toMatch(
      /chat template rejected this conversation: .*System role not supported/,
    );
  });

  const datasets: [string, (v: Record<string, unknown>) => string[]][] = [
    [
      'chat_sample.jsonl',
      (v) =>
        (v.messages as { role: string; content: string }[])
          .filter((m) => m.role === 'assistant')
          .map((m) => m.content),
    ],
    ['alpaca_sample.json', (v) => [v.output as string]],
    ['alpaca_seed_tasks.json', (v) => [v.output as string]],
    // The completion's leading space sits in its first token ("▁She"); the Llama decoder strips one leading space.
    ['prompt_completion_sample.jsonl', (v) => [(v.completion as string).replace(/^ /, '')]],
  ];
  for (const [file, expected] of datasets) {
    it(`${file}: every trained run decodes to exactly a completion + EOS`, async () => {
      const path = fixture(`datasets/${file}`);
      const text = readFileSync(path, 'utf8');
      const rows = (
        file.endsWith('.jsonl')
          ? text
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l))
          : JSON.parse(text)
      ) as Record<string, unknown>[];
      const { examples, report } = await readAllExamples(await openAsBlob(path), file, stories);
      expect(examples).toHaveLength(rows.length);
      let trained = 0;
      examples.forEach((e, i) => {
        expect(
          trainedRuns(e).map((r) => stories.decode(r)),
          `row ${e.row}`,
        ).toEqual(expected(rows[i]).map((c) => `${c}</s>`));
        trained += e.labels.filter((x) => x !== -100).length;
      });
      expect(report.trainedTokens).toBe(trained);
    });
  }

  it('ShareGPT conversations map human/gpt/system to user/assistant/system', async () => {
    const line = JSON.stringify({
      conversations: [
        { from: 'system', value: 'S' },
        { from: 'human', value: 'Q?' },
        { from: 'gpt', value: 'A.' },
      ],
    });
    const { examples, report } = await readAllExamples(
      new TextEncoder().encode(`${line}\n`),
      'sg.jsonl',
      stories,
    );
    expect(report.format).toBe('chat');
    expect(Array.from(examples[0].inputIds)).toEqual(
      stories.encode('<s>S\n\nUser: Q?\nAssistant: A.</s>\n', false),
    );
    expect(trainedRuns(examples[0]).map((r) => stories.decode(r))).toEqual(['A.</s>']);
  });
});
