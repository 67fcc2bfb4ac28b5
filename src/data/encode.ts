// A Sample to token ids and labels: templates rendered, completions located, prompts masked with -100, truncation.
import type { TextTokenizer } from './tokenizer';
import type { ChatMessage, Example, Sample } from './types';

export interface EncodeOptions {
  /** Train on prompts and user turns too (default: completions and assistant turns only). */
  trainOnPrompt?: boolean;
  /** Keep at most this many tokens per example (the tail is cut; counted as truncated). */
  maxLen?: number;
  /** The model's vocabulary size (config.json), which bounds pre-tokenized ids; default: the tokenizer's. */
  vocabSize?: number;
}

export type Encoded = { example: Example; truncated: boolean; fullLength: number } | { error: string };

/** A half-open character range of rendered text that is trained. */
interface Span {
  start: number;
  end: number;
}

/**
 * Maps character offsets of `text` to token indices of `full` (the tokens of all of `text`). Tokenizers split text
 * on added tokens first, so a boundary only needs the piece of text around it tokenized again: the prefix of that
 * piece is tokenized and compared with `full`. A token that straddles the boundary is the token at the returned
 * index, so a span's start includes it and its end must step past it: BPE merges across a boundary must never drop
 * trained characters. When the piecewise tokens differ from `full` (added tokens that strip whitespace), the whole
 * prefix is tokenized instead.
 */
export interface Pieces {
  ids: number[];
  /** Character start and first token index of each piece (a run of text, or one added token). */
  starts: number[];
  firstToken: number[];
}

/** Tokenizes text as tokenizers do internally: split on added tokens, then each run of text on its own. */
function encodePieces(tok: TextTokenizer, text: string): Pieces | undefined {
  const out: Pieces = { ids: [], starts: [], firstToken: [] };
  let pos = 0;
  while (pos < text.length) {
    let next = -1;
    let len = 0;
    for (const a of tok.addedTokens) {
      const at = text.indexOf(a, pos);
      if (at >= 0 && (next < 0 || at < next || (at === next && a.length > len))) [next, len] = [at, a.length];
    }
    const end = next < 0 ? text.length : next;
    if (end > pos) {
      out.starts.push(pos);
      out.firstToken.push(out.ids.length);
      for (const id of tok.encode(text.slice(pos, end), false)) out.ids.push(id);
    }
    if (next < 0) break;
    const id = tok.tokenToId(text.slice(next, next + len));
    if (id === undefined) return undefined;
    out.starts.push(next);
    out.firstToken.push(out.ids.length);
    out.ids.push(id);
    pos = next + len;
  }
  return out;
}

/** How many chats must tokenize the same piecewise and whole before the pieces are trusted alone. */
const PIECEWISE_CHECKS = 32;

/** The ids of a rendered chat (add_special_tokens=false), with its pieces when they are known to agree. */
function encodeRendered(tok: TextTokenizer, text: string): { ids: number[]; pieces?: Pieces } {
  const state = tok.piecewise;
  const pieces = state.ok ? encodePieces(tok, text) : undefined;
  if (pieces && state.agreed >= PIECEWISE_CHECKS) return { ids: pieces.ids, pieces };
  const ids = tok.encode(text, false);
  if (!pieces) return { ids };
  const same = pieces.ids.length === ids.length && pieces.ids.every((x, i) => x === ids[i]);
  if (!same) state.ok = false;
  else state.agreed++;
  return same ? { ids, pieces } : { ids };
}

/**
 * Token index of character `at` of `text` in `full` (the tokens of all of `text`): the prefix is tokenized again
 * (only within its piece when pieces are known) and compared with `full`. A token that straddles the boundary is
 * the token at the returned index, so a span's start includes it and its end must step past it: BPE merges across
 * a boundary must never drop trained characters.
 */
function tokenIndexAt(
  tok: TextTokenizer,
  full: number[],
  text: string,
  at: number,
  addSpecial: boolean,
  pieces?: Pieces,
): { index: number; clean: boolean } {
  if (at >= text.length) return { index: full.length, clean: true };
  let from = 0;
  let base = 0;
  if (pieces && pieces.starts.length) {
    let i = pieces.starts.length - 1;
    while (i > 0 && pieces.starts[i] > at) i--;
    from = pieces.starts[i];
    base = pieces.firstToken[i];
    if (from === at) return { index: base, clean: true };
  }
  const p = tok.encode(text.slice(from, at), addSpecial && from === 0);
  let i = 0;
  while (i < p.length && base + i < full.length && p[i] === full[base + i]) i++;
  return { index: base + i, clean: i === p.length };
}

function labelSpans(
  tok: TextTokenizer,
  ids: number[],
  text: string,
  spans: Span[],
  addSpecial: boolean,
  pieces?: Pieces,
): Int32Array {
  const labels = new Int32Array(ids.length).fill(-100);
  for (const s of spans) {
    const a = tokenIndexAt(tok, ids, text, s.start, addSpecial, pieces).index;
    const e = tokenIndexAt(tok, ids, text, s.end, addSpecial, pieces);
    const b = e.clean ? e.index : Math.min(ids.length, e.index + 1);
    for (let t = a; t < b; t++) labels[t] = ids[t];
  }
  return labels;
}

/** Where each assistant turn's trained text lies in the rendered chat: its content, then the EOS (or end-of-turn) token. */
function assistantSpans(
  tok: TextTokenizer,
  messages: ChatMessage[],
  text: string,
): Span[] | { error: string } {
  const spans: Span[] = [];
  let cursor = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.role === 'assistant') {
      // The render of the turns before, with the generation prompt, ends where this reply begins in most templates;
      // searching from there keeps short replies ("Yes") from matching inside earlier template text.
      try {
        const before = tok.renderChat(messages.slice(0, i), true);
        let k = 0;
        while (k < before.length && before.charCodeAt(k) === text.charCodeAt(k)) k++;
        cursor = Math.max(cursor, k);
      } catch {
        // Some templates refuse a partial conversation; the running cursor still orders the search.
      }
    }
    let content = m.content;
    let at = text.indexOf(content, cursor);
    if (at < 0) {
      content = m.content.trim();
      at = text.indexOf(content, cursor);
    }
    if (at < 0) return { error: `the chat template does not render message ${i + 1} (${m.role}) as given` };
    let end = at + content.length;
    cursor = end;
    if (m.role !== 'assistant') continue;
    end = endOfTurn(tok, text, end);
    spans.push({ start: at, end });
    cursor = end;
  }
  return spans;
}

/** The EOS (or another special token such as `<|im_end|>`) that closes a turn right after its content is trained too. */
function endOfTurn(tok: TextTokenizer, text: string, contentEnd: number): number {
  let p = contentEnd;
  while (p < text.length && (text[p] === ' ' || text[p] === '\t')) p++;
  if (text.startsWith(tok.eosToken, p)) return p + tok.eosToken.length;
  for (const s of tok.specialTokens) if (s !== tok.bosToken && text.startsWith(s, p)) return p + s.length;
  return contentEnd;
}

type TextSample = Exclude<Sample, { kind: 'tokenized' }>;

/** Token ids and labels of a text, prompt-completion or chat row (labels -100 outside what is trained). */
function tokenizeSample(
  tok: TextTokenizer,
  sample: TextSample,
  o: EncodeOptions,
): { ids: number[]; labels: Int32Array } | { error: string } {
  switch (sample.kind) {
    case 'text': {
      const ids = withEos(tok, tok.encode(sample.text, true));
      return { ids, labels: Int32Array.from(ids) };
    }
    case 'prompt-completion': {
      // Not templated (as TRL does for plain prompt/completion): the text is prompt + completion + EOS.
      // The appended EOS lies past the text's end, so the completion's span reaches it.
      const text = sample.prompt + sample.completion;
      const ids = withEos(tok, tok.encode(text, true));
      const labels = o.trainOnPrompt
        ? Int32Array.from(ids)
        : labelSpans(tok, ids, text, [{ start: sample.prompt.length, end: text.length }], true);
      return { ids, labels };
    }
    case 'chat': {
      let text: string;
      try {
        text = tok.renderChat(sample.messages, false);
      } catch (e) {
        return { error: `the chat template rejected this conversation: ${(e as Error).message}` };
      }
      // Rendered templates carry their own BOS: no special tokens added (as apply_chat_template tokenizes).
      const r = encodeRendered(tok, text);
      const spans = assistantSpans(tok, sample.messages, text);
      if (!Array.isArray(spans)) return spans;
      const labels = o.trainOnPrompt
        ? Int32Array.from(r.ids)
        : labelSpans(tok, r.ids, text, spans, false, r.pieces);
      return { ids: r.ids, labels };
    }
    default:
      return sample satisfies never;
  }
}

/** Encodes one sample; `row` is carried into the Example for reports. */
export function encodeSample(
  tok: TextTokenizer | null,
  sample: Sample,
  row: number,
  o: EncodeOptions = {},
): Encoded {
  let ids: number[];
  let labels: Int32Array;
  if (sample.kind === 'tokenized') {
    ids = sample.inputIds;
    const vocab = o.vocabSize ?? tok?.vocabSize ?? Infinity;
    const bad = ids.find((x) => x >= vocab);
    if (bad !== undefined) return { error: `input_ids holds ${bad}, outside the vocabulary (size ${vocab})` };
    labels = Int32Array.from(sample.labels ?? ids);
    const badLabel = labels.find((x) => x >= vocab);
    if (badLabel !== undefined)
      return { error: `labels holds ${badLabel}, outside the vocabulary (size ${vocab})` };
  } else {
    if (!tok) {
      return {
        error: `${sample.kind} rows need the model's tokenizer (tokenizer.json), which the model lacks`,
      };
    }
    const t = tokenizeSample(tok, sample, o);
    if ('error' in t) return t;
    ({ ids, labels } = t);
  }
  // Position 0 is never predicted (nothing precedes it); marking it keeps trained-token counts exact.
  if (labels.length) labels[0] = -100;
  const fullLength = ids.length;
  if (!hasTrained(labels, labels.length)) return { error: 'no trained token (every label is masked)' };
  let truncated = false;
  let inputIds = Int32Array.from(ids);
  if (o.maxLen !== undefined && ids.length > o.maxLen) {
    truncated = true;
    if (!hasTrained(labels, o.maxLen)) {
      const firstTrained = labels.findIndex((x) => x !== -100);
      return {
        error: `no trained token left after truncation to ${o.maxLen} tokens (the prompt alone is ${firstTrained} tokens, the example ${ids.length})`,
      };
    }
    inputIds = inputIds.slice(0, o.maxLen);
    labels = labels.slice(0, o.maxLen);
  }
  return { example: { inputIds, labels, row }, truncated, fullLength };
}

function withEos(tok: TextTokenizer, ids: number[]): number[] {
  if (ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
  return ids;
}

function hasTrained(labels: Int32Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (labels[i] !== -100) return true;
  return false;
}
