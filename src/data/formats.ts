// Which format a dataset is (detected from its columns, or forced), and each row normalized to a Sample or a reason.
import { DataError, FORMATS, type ChatMessage, type DatasetFormat, type Role, type Sample } from './types';

/** The columns each format needs, as shown to the user when nothing fits. */
export const FORMAT_COLUMNS: Record<DatasetFormat, string> = {
  text: 'text (or a .txt/.md file)',
  alpaca: 'instruction, output (+ optional input)',
  'prompt-completion': 'prompt, completion',
  chat: 'messages [{role, content}] or conversations [{from, value}] (ShareGPT)',
  tokenized: 'input_ids (+ optional labels)',
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && !Array.isArray(v);

/** The format a single row's keys fit, most specific first; undefined when none. */
export function rowFormat(v: unknown): DatasetFormat | undefined {
  if (!isObject(v)) return undefined;
  if ('input_ids' in v) return 'tokenized';
  if ('messages' in v || 'conversations' in v) return 'chat';
  if ('instruction' in v && 'output' in v) return 'alpaca';
  if ('prompt' in v && 'completion' in v) return 'prompt-completion';
  if ('text' in v) return 'text';
  return undefined;
}

/**
 * Detects the format by majority over the first rows (a few broken rows do not decide it). Throws a DataError
 * that lists the columns found and the formats expected when no row fits any format.
 */
export function detectFormat(values: unknown[], file: string): DatasetFormat {
  const votes = new Map<DatasetFormat, number>();
  const columns = new Set<string>();
  let objects = 0;
  for (const v of values) {
    if (isObject(v)) {
      objects++;
      for (const k of Object.keys(v)) columns.add(k);
    }
    const f = rowFormat(v);
    if (f) votes.set(f, (votes.get(f) ?? 0) + 1);
  }
  let best: DatasetFormat | undefined;
  for (const f of FORMATS) if ((votes.get(f) ?? 0) > (best ? (votes.get(best) ?? 0) : 0)) best = f;
  if (best) return best;
  const found = objects
    ? `columns found: ${[...columns].map((c) => JSON.stringify(c)).join(', ') || '(none)'}`
    : 'no row is a JSON object';
  const expected = FORMATS.map((f) => `  ${f}: ${FORMAT_COLUMNS[f]}`).join('\n');
  throw new DataError(`${file}: the rows fit no known format (${found}). Expected one of:\n${expected}`);
}

export function parseFormat(s: string): DatasetFormat {
  const f = s === 'sharegpt' || s === 'messages' ? 'chat' : s === 'completion' ? 'prompt-completion' : s;
  if ((FORMATS as readonly string[]).includes(f)) return f as DatasetFormat;
  throw new DataError(`unknown format "${s}"; expected one of: ${FORMATS.join(', ')}`);
}

const SHAREGPT_ROLES: Record<string, Role> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
};

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v);

/** Lists and objects inside CSV/TSV cells arrive as JSON text. */
function jsonCell(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const t = v.trim();
  if (!t.startsWith('[') && !t.startsWith('{')) return v;
  try {
    return JSON.parse(t);
  } catch {
    return v;
  }
}

/** A required non-empty string field, or the reason it is not one. */
function field(row: Record<string, unknown>, key: string): string | { error: string } {
  if (!(key in row) || row[key] === undefined) return { error: `missing field "${key}"` };
  const v = row[key];
  if (typeof v !== 'string') return { error: `"${key}" must be a string, got ${typeName(v)}` };
  if (v.trim() === '') return { error: `"${key}" is empty` };
  return v;
}

/** Validates a conversation: known roles, string contents, system only first, at least one assistant turn. */
export function chatMessages(raw: unknown, key = 'messages'): ChatMessage[] | { error: string } {
  raw = jsonCell(raw);
  if (raw === undefined) return { error: `missing field "${key}"` };
  if (!Array.isArray(raw)) return { error: `"${key}" must be a list of messages, got ${typeName(raw)}` };
  if (raw.length === 0) return { error: `"${key}" is empty` };
  const out: ChatMessage[] = [];
  for (let i = 0; i < raw.length; i++) {
    const m: unknown = raw[i];
    const n = `message ${i + 1}`;
    if (!isObject(m)) return { error: `${n} must be an object {role, content}, got ${typeName(m)}` };
    const roleRaw = m.role ?? m.from;
    if (roleRaw === undefined) return { error: `${n} has no "role" (or ShareGPT "from")` };
    const role = typeof roleRaw === 'string' ? SHAREGPT_ROLES[roleRaw.toLowerCase()] : undefined;
    if (!role)
      return {
        error: `${n}: role ${JSON.stringify(roleRaw)} is not one the template can take (system, user, assistant; ShareGPT human, gpt, system)`,
      };
    const content = 'content' in m ? m.content : m.value;
    if (content === undefined || content === null) return { error: `${n} (${role}) has no content` };
    if (typeof content !== 'string')
      return { error: `${n} (${role}): content must be a string, got ${typeName(content)}` };
    if (content.trim() === '') return { error: `${n} (${role}): content is empty` };
    if (role === 'system' && i > 0) return { error: `${n}: a system message must come first` };
    out.push({ role, content });
  }
  if (!out.some((m) => m.role === 'assistant')) return { error: 'no assistant message: nothing to train on' };
  return out;
}

function intList(v: unknown, key: string, allowMasked: boolean): number[] | { error: string } {
  v = jsonCell(v);
  if (!Array.isArray(v)) return { error: `"${key}" must be a list of integers, got ${typeName(v)}` };
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || (x < 0 && !(allowMasked && x === -100)))
      return {
        error: `"${key}"[${i}] is ${JSON.stringify(x)}, not a token id${allowMasked ? ' or -100' : ''}`,
      };
  }
  return v as number[];
}

/** Turns a raw row into a Sample of the given format, or says what is wrong with it. */
export function normalize(v: unknown, format: DatasetFormat): Sample | { error: string } {
  if (!isObject(v)) return { error: `expected an object with the ${format} columns, got ${typeName(v)}` };
  switch (format) {
    case 'text': {
      const t = field(v, 'text');
      return typeof t === 'string' ? { kind: 'text', text: t } : t;
    }
    case 'alpaca': {
      const instruction = field(v, 'instruction');
      if (typeof instruction !== 'string') return instruction;
      const input = v.input ?? '';
      if (typeof input !== 'string') return { error: `"input" must be a string, got ${typeName(input)}` };
      const output = field(v, 'output');
      if (typeof output !== 'string') return output;
      const messages: ChatMessage[] = [];
      if (typeof v.system === 'string' && v.system.trim())
        messages.push({ role: 'system', content: v.system });
      // The rendering: user = instruction, plus a blank line and the input when there is one.
      messages.push({ role: 'user', content: input.trim() ? `${instruction}\n\n${input}` : instruction });
      messages.push({ role: 'assistant', content: output });
      return { kind: 'chat', messages };
    }
    case 'prompt-completion': {
      const p = jsonCell(v.prompt);
      const c = jsonCell(v.completion);
      // TRL's conversational prompt-completion: both sides are message lists.
      if (Array.isArray(p) && Array.isArray(c)) {
        const msgs = chatMessages([...(p as unknown[]), ...(c as unknown[])], 'prompt + completion');
        return Array.isArray(msgs) ? { kind: 'chat', messages: msgs } : msgs;
      }
      const prompt = field(v, 'prompt');
      if (typeof prompt !== 'string') return prompt;
      const completion = field(v, 'completion');
      if (typeof completion !== 'string') return completion;
      return { kind: 'prompt-completion', prompt, completion };
    }
    case 'chat': {
      const key = 'messages' in v ? 'messages' : 'conversations';
      const msgs = chatMessages(v[key], key);
      return Array.isArray(msgs) ? { kind: 'chat', messages: msgs } : msgs;
    }
    case 'tokenized': {
      if (!('input_ids' in v)) return { error: 'missing field "input_ids"' };
      const ids = intList(v.input_ids, 'input_ids', false);
      if (!Array.isArray(ids)) return ids;
      if (!ids.length) return { error: '"input_ids" is empty' };
      if (v.labels === undefined || v.labels === null) return { kind: 'tokenized', inputIds: ids };
      const labels = intList(v.labels, 'labels', true);
      if (!Array.isArray(labels)) return labels;
      if (labels.length !== ids.length)
        return { error: `"labels" has ${labels.length} entries, "input_ids" has ${ids.length}` };
      return { kind: 'tokenized', inputIds: ids, labels };
    }
  }
}
