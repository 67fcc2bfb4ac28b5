// The float64 whole-model reference is itself checked: against the fixture's published logits, and its LoRA
// gradients by central finite differences (in float64, so differences are accurate to ~1e-8).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ModelSpec } from '../../src/model/spec';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import { uniform } from '../helpers/random';
import { readF32Safetensors, tinyModel, weights64 } from '../helpers/tiny-models';
import type { RefBatch, RefLora } from '../reference/model';
import { refForwardBackward } from '../reference/model';

const STORIES: ModelSpec = {
  arch: 'llama',
  modelType: 'llama',
  hiddenSize: 64,
  numLayers: 5,
  numHeads: 8,
  numKvHeads: 4,
  headDim: 8,
  intermediateSize: 172,
  vocabSize: 512,
  maxPositions: 512,
  norm: { kind: 'rms', eps: 1e-5 },
  rope: { theta: 10000 },
  act: 'silu',
  tieWordEmbeddings: true,
  attentionBias: false,
  mlpBias: false,
  bosTokenId: 1,
  eosTokenIds: [2],
  dtype: 'f32',
};

describe('float64 reference model', () => {
  it.skipIf(!hasFixtures)(`matches stories260K's published logits ${hasFixtures ? '' : NO_FIXTURES}`, () => {
    const ref = JSON.parse(readFileSync(fixture('models/stories260K-reference.json'), 'utf8'));
    const W = readF32Safetensors(readFileSync(fixture('models/stories260K-hf/model.safetensors')));
    const ids = ref.prompt_ids as number[];
    const r = refForwardBackward(STORIES, W, new Map(), { B: 1, T: ids.length, inputIds: ids, labels: ids });
    const last = r.logits.subarray((ids.length - 1) * 512, ids.length * 512);
    const want = ref.last_position_logits as number[];
    let worst = 0;
    for (let i = 0; i < 512; i++) worst = Math.max(worst, Math.abs(last[i] - want[i]));
    expect(worst).toBeLessThan(1e-5); // the published values have 6 decimals
    expect(r.lossSum / r.tokens).toBeCloseTo(ref.prompt_mean_nll, 6);
  });

  for (const kind of ['llama', 'llama3-untied', 'qwen2', 'gpt2'] as const) {
    it(`${kind}: LoRA gradients equal finite differences`, () => {
      const m = tinyModel(kind, 3);
      const W = weights64(m);
      const targets =
        kind === 'gpt2'
          ? [
              'transformer.h.0.attn.c_attn',
              'transformer.h.1.mlp.c_proj',
              'transformer.h.1.attn.c_proj',
              'transformer.h.0.mlp.c_fc',
            ]
          : [
              'model.layers.0.self_attn.q_proj',
              'model.layers.1.self_attn.v_proj',
              'model.layers.0.mlp.down_proj',
              'model.layers.1.mlp.gate_proj',
            ];
      const r = 2;
      const lora = new Map<string, RefLora>();
      targets.forEach((mod, i) => {
        const w = m.tensors.get(`${mod}.weight`)!;
        const [inF, outF] = kind === 'gpt2' ? w.shape : [w.shape[1], w.shape[0]];
        lora.set(mod, {
          A: Float64Array.from(uniform(r * inF, 50 + i, 0.3)),
          B: Float64Array.from(uniform(outF * r, 60 + i, 0.3)), // non-zero B so that dA is not trivially zero
          r,
          scaling: 1.5,
        });
      });
      const T = 6;
      const batch: RefBatch = {
        B: 2,
        T,
        inputIds: [3, 7, 1, 9, 4, 4, 5, 2, 8, 8, 3, 0],
        labels: [3, 7, -100, 9, 4, 4, 5, 2, 8, -100, 3, 0],
      };
      const base = refForwardBackward(m.spec, W, lora, batch);
      const meanLoss = () => {
        const o = refForwardBackward(m.spec, W, lora, batch, { wantGrads: false });
        return o.lossSum / o.tokens;
      };
      const h = 1e-5;
      for (const mod of targets) {
        const p = lora.get(mod)!;
        const g = base.grads.get(mod)!;
        for (const [arr, grad] of [
          [p.A, g.dA],
          [p.B, g.dB],
        ] as const) {
          for (const idx of [0, Math.floor(arr.length / 2), arr.length - 1]) {
            const keep = arr[idx];
            arr[idx] = keep + h;
            const up = meanLoss();
            arr[idx] = keep - h;
            const down = meanLoss();
            arr[idx] = keep;
            const fd = (up - down) / (2 * h);
            expect(Math.abs(fd - grad[idx])).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
          }
        }
      }
    });
  }
});
