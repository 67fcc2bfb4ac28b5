// `lora-studio adapters`: work on PEFT adapter folders without a GPU (combine several into one, show one).
import { adapterFiles } from '../../lora/adapter-io';
import { combineAdapters } from '../../lora/combine';
import { adapterParamCount } from '../../lora/count';
import { readAdapterDir, writeFolder } from '../../lora/fs-node';
import type { Command, ParsedValues } from '../command';
import { str, UsageError } from '../command';

function parseWeights(v: unknown, n: number): number[] {
  if (v === undefined) return Array.from({ length: n }, () => 1 / n);
  const parts = str(v, 'weights').split(',');
  const w = parts.map((p) => Number(p));
  if (parts.some((p) => p.trim() === '') || w.some((x) => !Number.isFinite(x)))
    throw new UsageError(`--weights wants numbers separated by commas, got "${String(v)}"`);
  if (w.length !== n) throw new UsageError(`--weights has ${w.length} numbers for ${n} adapters`);
  return w;
}

async function combine(values: ParsedValues, dirs: string[]): Promise<number> {
  if (dirs.length < 2) throw new UsageError('adapters combine needs at least two adapter folders');
  const out = str(values.out, 'out');
  const weights = parseWeights(values.weights, dirs.length);
  const adapters = await Promise.all(dirs.map(readAdapterDir));
  const combined = combineAdapters(adapters, weights);
  await writeFolder(out, adapterFiles(combined));
  console.log(
    `combined ${dirs.length} adapters (weights ${weights.join(', ')}) into ${out}: ${combined.tensors.size} modules, r = ${combined.config.r}, ${adapterParamCount(combined).toLocaleString('en-US')} LoRA params`,
  );
  return 0;
}

async function show(dirs: string[]): Promise<number> {
  if (dirs.length === 0) throw new UsageError('adapters show needs an adapter folder');
  for (const dir of dirs) {
    const a = await readAdapterDir(dir);
    const c = a.config;
    const t = typeof c.targetModules === 'string' ? c.targetModules : c.targetModules.join(', ');
    console.log(
      `${dir}\n  base: ${c.baseModelNameOrPath ?? '?'}\n  r ${c.r}, lora_alpha ${c.loraAlpha}${c.useRslora ? ', rsLoRA' : ''}`,
    );
    console.log(
      `  target_modules: ${t}\n  modules: ${a.tensors.size}, LoRA params: ${adapterParamCount(a).toLocaleString('en-US')}`,
    );
  }
  return 0;
}

export const adapters: Command = {
  summary: 'combine PEFT adapters into one (exact weighted sum), or show them',
  usage: [
    '  adapters combine A B [...] --weights 0.7,0.3 --out DIR',
    '      Σ wᵢ·(scalingᵢ·Bᵢ·Aᵢ) as one adapter, exact (PEFT add_weighted_adapter "cat"; rank = Σ rᵢ).',
    '      --weights defaults to equal weights 1/n.',
    '  adapters show A [...]     config and size of each adapter',
  ].join('\n'),
  options: { weights: { type: 'string' }, out: { type: 'string' } },
  async run(values, positionals) {
    const [sub, ...rest] = positionals;
    if (sub === 'combine') return combine(values, rest);
    if (sub === 'show') return show(rest);
    throw new UsageError(`adapters: unknown subcommand "${sub ?? ''}" (combine, show)`);
  },
};
