// README.md model card written beside an exported adapter: base model, data, every hyperparameter, final losses.
import type { Adapter } from './config';
import { adapterParamCount } from './count';

export interface ModelCardInfo {
  /** Hub id or path of the base model. */
  baseModel: string;
  revision?: string | null;
  /** Title of the card; defaults to "LoRA adapter for <base>". */
  title?: string;
  data: {
    /** File name or dataset id. */
    source: string;
    format: string;
    rows: number;
    /** Rows held out for evaluation. */
    evalRows?: number;
    /** Tokens trained on (loss-bearing), if known. */
    tokens?: number;
  };
  /** Every training hyperparameter, as the user set it (learning rate, epochs, batch size, seed, …). */
  hyperparameters: Record<string, string | number | boolean | null>;
  finalTrainLoss: number | null;
  finalEvalLoss: number | null;
  /** e.g. "LoRA Studio 0.1.0 (WebGPU, NVIDIA …)". */
  trainedWith?: string;
}

function cell(v: unknown): string {
  const s = v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function loss(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '—' : v.toFixed(4);
}

/** A double-quoted Python string literal. */
function pyStr(s: string): string {
  return JSON.stringify(s);
}

/** The card, with YAML front matter that the Hub reads (`base_model`, `library_name: peft`). */
export function modelCard(adapter: Adapter, info: ModelCardInfo): string {
  const c = adapter.config;
  const title = info.title ?? `LoRA adapter for ${info.baseModel}`;
  const targets =
    typeof c.targetModules === 'string'
      ? `\`${c.targetModules}\` (regex)`
      : c.targetModules.map((t) => `\`${t}\``).join(', ');
  const lora: [string, unknown][] = [
    ['r', c.r],
    ['lora_alpha', c.loraAlpha],
    ['lora_dropout', c.loraDropout],
    ['use_rslora', c.useRslora],
    ['target_modules', targets],
    ['rank_pattern', Object.keys(c.rankPattern).length ? c.rankPattern : null],
    ['alpha_pattern', Object.keys(c.alphaPattern).length ? c.alphaPattern : null],
    ['layers_to_transform', c.layersToTransform],
    ['modules adapted', adapter.tensors.size],
    ['LoRA parameters', adapterParamCount(adapter).toLocaleString('en-US')],
  ];
  const rev = info.revision ? `, revision=${pyStr(info.revision)}` : '';
  const d = info.data;
  return [
    '---',
    `base_model: ${JSON.stringify(info.baseModel)}`,
    'library_name: peft',
    'pipeline_tag: text-generation',
    'tags:',
    '- lora',
    '- lora-studio',
    '---',
    '',
    `# ${title}`,
    '',
    `A LoRA adapter for [${info.baseModel}](https://huggingface.co/${info.baseModel})${info.revision ? ` (revision \`${info.revision}\`)` : ''}, trained with ${info.trainedWith ?? 'LoRA Studio'}.`,
    '',
    '## Training data',
    '',
    `- source: ${cell(d.source)}`,
    `- format: ${cell(d.format)}`,
    `- rows: ${d.rows.toLocaleString('en-US')}${d.evalRows !== undefined ? ` (${d.evalRows.toLocaleString('en-US')} held out for evaluation)` : ''}`,
    ...(d.tokens !== undefined ? [`- trained tokens: ${d.tokens.toLocaleString('en-US')}`] : []),
    '',
    '## LoRA',
    '',
    '| setting | value |',
    '|---|---|',
    ...lora.map(([k, v]) => `| ${k} | ${cell(v)} |`),
    '',
    '## Training hyperparameters',
    '',
    '| hyperparameter | value |',
    '|---|---|',
    ...Object.entries(info.hyperparameters).map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`),
    '',
    '## Results',
    '',
    '| metric | value |',
    '|---|---|',
    `| final train loss | ${loss(info.finalTrainLoss)} |`,
    `| final eval loss | ${loss(info.finalEvalLoss)} |`,
    '',
    '## Usage',
    '',
    '```python',
    'from peft import PeftModel',
    'from transformers import AutoModelForCausalLM, AutoTokenizer',
    '',
    `base = AutoModelForCausalLM.from_pretrained(${pyStr(info.baseModel)}${rev})`,
    `tokenizer = AutoTokenizer.from_pretrained(${pyStr(info.baseModel)}${rev})`,
    'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
    '# model = model.merge_and_unload()  # optional: fold the adapter into the weights',
    '```',
    '',
  ].join('\n');
}
