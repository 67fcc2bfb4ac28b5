// `lora-studio info --model M`: architecture, sizes, dtype, parameter count and the modules LoRA can target.
import { countParams, openCheckpoint } from '../../model/load';
import type { ModelSource } from '../../model/sources/source';
import type { ModelSpec } from '../../model/spec';
import type { Command } from '../command';
import { int, str, UsageError } from '../command';

export interface ModuleInfo {
  /** PEFT module name. */
  name: string;
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
}

/** Everything `info` prints; the `--json` output is exactly this object. */
export interface ModelInfo {
  source: string;
  arch: ModelSpec['arch'];
  spec: ModelSpec;
  /** Dtypes of the weights as stored (e.g. ["BF16"]); spec.dtype is what config.json declares. */
  storedDtypes: string[];
  weightFiles: string[];
  /** Bytes of the weights as stored. */
  weightBytes: number;
  params: number;
  /** Module kinds LoRA can target (`q_proj`, `c_attn`…), in layer order, each once. */
  targetKinds: string[];
  modules: ModuleInfo[];
}

/** Reads config.json and the safetensors headers (no weights, no GPU) and checks them against each other. */
export async function modelInfo(source: ModelSource): Promise<ModelInfo> {
  const cp = await openCheckpoint(source);
  await source.close?.();
  const modules = cp.layout.modules.map((m) => ({
    name: m.name,
    inFeatures: m.inFeatures,
    outFeatures: m.outFeatures,
    bias: m.biasName !== undefined,
  }));
  return {
    source: cp.source,
    arch: cp.spec.arch,
    spec: cp.spec,
    storedDtypes: cp.dtypes,
    weightFiles: cp.weightFiles,
    weightBytes: cp.bytes,
    params: countParams(cp.spec),
    targetKinds: [...new Set(cp.layout.modules.map((m) => m.kind))],
    modules,
  };
}

const n = (x: number) => x.toLocaleString('en-US');

/** The human-readable report; `extra` lines (e.g. trainable parameters of a LoRA config) go before the modules. */
export function formatModelInfo(info: ModelInfo, extra: string[] = []): string {
  const s = info.spec;
  const heads = s.numKvHeads === s.numHeads ? `${s.numHeads}` : `${s.numHeads} (kv ${s.numKvHeads})`;
  const pos = s.rope
    ? `RoPE theta ${s.rope.theta}${s.rope.scaling ? `, ${s.rope.scaling.type} scaling ×${s.rope.scaling.factor}` : ''}`
    : 'learned';
  const lines = [
    `model          ${info.source}`,
    `architecture   ${s.arch} (model_type ${s.modelType})`,
    `layers         ${s.numLayers}`,
    `hidden         ${s.hiddenSize}`,
    `heads          ${heads}, head_dim ${s.headDim}`,
    `mlp            ${s.intermediateSize} (${s.act})`,
    `vocab          ${n(s.vocabSize)}`,
    `max positions  ${n(s.maxPositions)} (${pos})`,
    `norm           ${s.norm.kind === 'rms' ? 'RMSNorm' : 'LayerNorm'} eps ${s.norm.eps}`,
    `embeddings     ${s.tieWordEmbeddings ? 'tied to lm_head' : 'separate lm_head'}`,
    `dtype          ${info.storedDtypes.join(', ')} (config: ${s.dtype})`,
    `weights        ${n(info.weightBytes)} bytes in ${info.weightFiles.join(', ')}`,
    `parameters     ${n(info.params)}`,
    ...extra,
    `LoRA targets   ${info.targetKinds.join(', ')}`,
    '',
    `${info.modules.length} linear modules:`,
    ...info.modules.map(
      (m) => `  ${m.name.padEnd(44)} ${String(m.inFeatures).padStart(6)} → ${m.outFeatures}`,
    ),
  ];
  return lines.join('\n');
}

export const info: Command = {
  summary: 'describe a model: architecture, sizes, parameters, LoRA-targetable modules',
  usage: [
    '  --model M    a model folder, or a Hub id (org/name[@revision]), downloaded into the HF cache',
    '  --target T   LoRA target modules (names, a regex, or all-linear) for the trainable-parameters line',
    '  --r N        LoRA rank for that line (default 8); --rslora and --alpha do not change the count',
    '  --json       print the report as JSON',
  ].join('\n'),
  options: {
    model: { type: 'string' },
    target: { type: 'string' },
    r: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values) {
    const { openModelSource } = await import('../../model/sources/node');
    const model = str(values.model, 'model');
    const source = await openModelSource(model, {
      onProgress: (p) => {
        if (p.total && p.loaded === p.total) console.error(`downloaded ${p.file} (${n(p.total)} bytes)`);
      },
    });
    const result = await modelInfo(source);
    const extra: string[] = [];
    let trainable: string | undefined;
    if (values.target !== undefined || values.r !== undefined) {
      const { loraConfig } = await import('../../lora/config');
      const { parseTargets } = await import('../../lora/defaults');
      const { trainableParamsLine } = await import('../../lora/count');
      const ck = await openCheckpoint(source);
      const r = int(values.r, 'r', 8);
      if (r < 1) throw new UsageError(`--r must be at least 1, got ${r}`);
      const target = typeof values.target === 'string' ? values.target : null;
      const config = loraConfig({ targetModules: parseTargets(target, ck.spec.arch), r, loraAlpha: r });
      trainable = trainableParamsLine(ck.spec, ck.layout.modules, config);
      extra.push(trainable);
    }
    console.log(
      values.json ? JSON.stringify({ ...result, trainable }, null, 2) : formatModelInfo(result, extra),
    );
    return 0;
  },
};
