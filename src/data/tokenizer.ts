// The model's tokenizer (tokenizer.json + tokenizer_config.json via @huggingface/tokenizers) and its chat template (@huggingface/jinja).
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { DataError, type ChatMessage } from './types';

/** The text of a model's tokenizer files, so the same code runs in a worker (fetched/File) and in Node (fs). */
export interface TokenizerFiles {
  tokenizerJson: string;
  tokenizerConfig?: string;
  /** `chat_template.jinja`, which newer checkpoints ship beside tokenizer_config.json. */
  chatTemplate?: string;
}

/**
 * Used when the model has no chat_template (documented in src/data/README.md): each turn is a header line and its
 * content; assistant turns end with EOS, which is trained. BOS is prepended when the tokenizer adds one to text.
 */
export const PLAIN_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
  "{% elif message['role'] == 'user' %}{{ '### User:\\n' + message['content'] + '\\n\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ '### Assistant:\\n' + message['content'] + eos_token + '\\n\\n' }}" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Assistant:\\n' }}{% endif %}";

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return undefined;
}

function parseJson(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DataError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** tokenizer_config.json may hold one template, or a list of named ones (Transformers picks "default"). */
function pickTemplate(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as { name?: string; template?: string }[];
    return (named.find((x) => x.name === 'default') ?? named[0])?.template;
  }
  if (t && typeof t === 'object') {
    const o = t as Record<string, string>;
    return o.default ?? Object.values(o)[0];
  }
  return undefined;
}

export class TextTokenizer {
  readonly bosToken?: string;
  readonly eosToken: string;
  readonly bosId?: number;
  readonly eosId: number;
  readonly vocabSize: number;
  /** Whether encoding plain text (add_special_tokens) puts BOS first. */
  readonly addsBos: boolean;
  readonly chatTemplate: string;
  /** False when the model has no chat_template and PLAIN_CHAT_TEMPLATE is used. */
  readonly hasOwnTemplate: boolean;
  /** Added special tokens (e.g. `<|im_end|>`), to recognize end-of-turn markers in rendered chats. */
  readonly specialTokens: string[];
  /** Every added token (special or not): the tokenizer splits text on these before anything else. */
  readonly addedTokens: string[];
  /**
   * Whether tokenizing the text between added tokens piece by piece gives the same ids as tokenizing it whole (true
   * for most tokenizers, not for added tokens that strip whitespace or a Metaspace that prepends only once). The
   * first chats are checked both ways; once enough agree, the pieces alone are used.
   */
  readonly piecewise = { agreed: 0, ok: true };
  private readonly tok: Tokenizer;
  private readonly template: Template;
  private readonly context: Record<string, unknown>;

  constructor(files: TokenizerFiles) {
    const json = parseJson(files.tokenizerJson, 'tokenizer.json');
    const config = files.tokenizerConfig ? parseJson(files.tokenizerConfig, 'tokenizer_config.json') : {};
    try {
      this.tok = new Tokenizer(json, config);
    } catch (e) {
      throw new DataError(`cannot build the tokenizer from tokenizer.json: ${(e as Error).message}`);
    }
    const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as {
      content: string;
      special?: boolean;
    }[];
    this.specialTokens = added.filter((t) => t.special).map((t) => t.content);
    this.addedTokens = added.map((t) => t.content).filter((t) => t.length > 0);
    this.bosToken = tokenString(config.bos_token);
    const eos = tokenString(config.eos_token);
    if (!eos) throw new DataError('tokenizer_config.json has no eos_token: completions could not be ended');
    const eosId = this.tok.token_to_id(eos);
    if (eosId === undefined)
      throw new DataError(`the eos_token "${eos}" is not in the tokenizer's vocabulary`);
    this.eosToken = eos;
    this.eosId = eosId;
    this.bosId = this.bosToken === undefined ? undefined : this.tok.token_to_id(this.bosToken);
    this.vocabSize = this.tok.get_vocab(true).size;
    const probe = this.tok.encode('a', { add_special_tokens: true }).ids;
    this.addsBos = this.bosId !== undefined && probe[0] === this.bosId;
    const own = files.chatTemplate ?? pickTemplate(config.chat_template);
    this.hasOwnTemplate = !!own;
    this.chatTemplate = own ?? (this.addsBos ? `{{ bos_token }}${PLAIN_CHAT_TEMPLATE}` : PLAIN_CHAT_TEMPLATE);
    try {
      this.template = new Template(this.chatTemplate);
    } catch (e) {
      throw new DataError(`the chat template does not parse: ${(e as Error).message}`);
    }
    // What Transformers passes to the template: the special tokens map (raise_exception and strftime_now are
    // @huggingface/jinja globals already).
    this.context = {
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken,
      unk_token: tokenString(config.unk_token) ?? '',
      pad_token: tokenString(config.pad_token) ?? '',
    };
  }

  encode(text: string, addSpecialTokens: boolean): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: ArrayLike<number>, skipSpecialTokens = false): string {
    return this.tok.decode(Array.from(ids), { skip_special_tokens: skipSpecialTokens });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /** The chat rendered exactly as Transformers' apply_chat_template(messages, tokenize=False) would. */
  renderChat(messages: ChatMessage[], addGenerationPrompt = false): string {
    return this.template.render({ ...this.context, messages, add_generation_prompt: addGenerationPrompt });
  }
}
