// `lora-studio merge`: folds a PEFT adapter into its base model and writes a Hugging Face model folder.
import { openModelSource } from '../../model/sources/node';
import { writeFolder, readAdapterDir } from '../../lora/fs-node';
import type { FloatDtype } from '../../lora/adapter-io';
import { mergeModelFromSource } from '../../lora/merge-model';
import type { Command } from '../command';
import { str, UsageError } from '../command';

const DTYPES: readonly FloatDtype[] = ['f32', 'f16', 'bf16'];

export const merge: Command = {
  summary: 'merge a LoRA adapter into its base model (W + scaling·B·A) and save the model',
  usage: [
    '  --model M        base model: a folder or a Hub id (org/name[@revision])',
    '  --adapter A      PEFT adapter folder (adapter_config.json + adapter_model.safetensors)',
    '  --out DIR        output folder: config.json, model.safetensors (sharded above 2 GB), tokenizer files',
    "  --dtype D        f32 | f16 | bf16 (default: the base model's dtype, tensor by tensor)",
  ].join('\n'),
  options: {
    model: { type: 'string' },
    adapter: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string' },
  },
  async run(values) {
    const model = str(values.model, 'model');
    const adapterDir = str(values.adapter, 'adapter');
    const out = str(values.out, 'out');
    const dtype = values.dtype === undefined ? undefined : str(values.dtype, 'dtype');
    if (dtype !== undefined && !DTYPES.includes(dtype as FloatDtype))
      throw new UsageError(`--dtype must be one of ${DTYPES.join(', ')}, got "${dtype}"`);
    const adapter = await readAdapterDir(adapterDir);
    const source = await openModelSource(model);
    try {
      const files = await mergeModelFromSource(source, adapter, { dtype: dtype as FloatDtype | undefined });
      await writeFolder(out, files);
      const bytes = files.reduce((s, f) => s + f.data.length, 0);
      console.log(
        `merged ${adapter.tensors.size} modules into ${model}; wrote ${files.length} files (${bytes.toLocaleString('en-US')} bytes) to ${out}`,
      );
    } finally {
      await source.close?.();
    }
    return 0;
  },
};
