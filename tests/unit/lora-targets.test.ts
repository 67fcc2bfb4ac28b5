// Target matching as PEFT's check_target_module_exists, init as PEFT's reset_lora_parameters, and PEFT's count line.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { modelLayout } from '../../src/model/architectures/index';
import { parseConfigText } from '../../src/model/config';
import { loraConfig } from '../../src/lora/config';
import { formatTrainableLine, loraParamCount, trainableParamsLine } from '../../src/lora/count';
import { initAdapter } from '../../src/lora/init';
import { allLinearNames, fullMatch, isTargeted, targetModules } from '../../src/lora/targets';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';

function model(dir: string) {
  const spec = parseConfigText(readFileSync(fixture(`models/${dir}/config.json`), 'utf8'));
  return { spec, modules: modelLayout(spec).modules };
}

describe('isTargeted', () => {
  const q = 'model.layers.3.self_attn.q_proj';
  it('list: exact name or a `.`-suffix, never a bare substring', () => {
    expect(isTargeted(loraConfig({ targetModules: ['q_proj'] }), q)).toBe(true);
    expect(isTargeted(loraConfig({ targetModules: ['self_attn.q_proj'] }), q)).toBe(true);
    expect(isTargeted(loraConfig({ targetModules: [q] }), q)).toBe(true);
    expect(isTargeted(loraConfig({ targetModules: ['_proj'] }), q)).toBe(false);
    expect(isTargeted(loraConfig({ targetModules: ['proj'] }), q)).toBe(false);
  });
  it('string: a regex that must match the whole name (re.fullmatch)', () => {
    expect(isTargeted(loraConfig({ targetModules: '.*\\.(q|v)_proj' }), q)).toBe(true);
    expect(isTargeted(loraConfig({ targetModules: 'q_proj' }), q)).toBe(false);
    expect(isTargeted(loraConfig({ targetModules: 'model\\.layers\\.3\\..*' }), q)).toBe(true);
    expect(isTargeted(loraConfig({ targetModules: '.*layers\\.(?P<n>[0-2])\\..*' }), q)).toBe(false);
    expect(fullMatch('.*layers\\.(?P<n>[0-3])\\..*', q)).toBe(true);
  });
  it('layers_to_transform filters suffix matches by layer index, with or without layers_pattern', () => {
    expect(isTargeted(loraConfig({ targetModules: ['q_proj'], layersToTransform: [1, 3] }), q)).toBe(true);
    expect(isTargeted(loraConfig({ targetModules: ['q_proj'], layersToTransform: 2 }), q)).toBe(false);
    expect(
      isTargeted(loraConfig({ targetModules: ['q_proj'], layersToTransform: 3, layersPattern: 'layers' }), q),
    ).toBe(true);
    expect(
      isTargeted(loraConfig({ targetModules: ['q_proj'], layersToTransform: 3, layersPattern: ['h'] }), q),
    ).toBe(false);
    // An exact name in the list is taken outright, as PEFT does.
    expect(isTargeted(loraConfig({ targetModules: [q], layersToTransform: 0 }), q)).toBe(true);
    // Regex targets ignore layers_to_transform, as PEFT does.
    expect(isTargeted(loraConfig({ targetModules: '.*q_proj', layersToTransform: 0 }), q)).toBe(true);
  });
  it('exclude_modules wins', () => {
    expect(
      isTargeted(loraConfig({ targetModules: ['q_proj'], excludeModules: ['layers.3.self_attn.q_proj'] }), q),
    ).toBe(false);
    expect(isTargeted(loraConfig({ targetModules: ['q_proj'], excludeModules: '.*\\.3\\..*' }), q)).toBe(
      false,
    );
    expect(isTargeted(loraConfig({ targetModules: ['q_proj'], excludeModules: ['k_proj'] }), q)).toBe(true);
  });
});

describe.skipIf(!hasFixtures)(`targets on real layouts ${hasFixtures ? '' : NO_FIXTURES}`, () => {
  it('all-linear is every linear layer but the head (Llama and GPT-2)', () => {
    const llama = model('stories260K-hf');
    expect(allLinearNames(llama.modules)).toEqual([
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
    expect(targetModules(loraConfig({ targetModules: 'all-linear' }), llama.modules)).toHaveLength(35);
    const gpt2 = model('gpt2-tiny-random');
    expect(allLinearNames(gpt2.modules)).toEqual(['c_attn', 'c_fc', 'c_proj']);
    expect(
      targetModules(loraConfig({ targetModules: 'all-linear' }), gpt2.modules).map((m) => m.name),
    ).toEqual(gpt2.modules.map((m) => m.name));
  });

  it('a config that targets nothing is an error naming the targets', () => {
    expect(() =>
      targetModules(loraConfig({ targetModules: ['query'] }), model('stories260K-hf').modules),
    ).toThrow(/\[query\]/);
  });

  it('init: A uniform in ±1/sqrt(in) (kaiming a=√5), B zero, the same for the same seed', () => {
    const { modules } = model('stories260K-hf');
    const c = loraConfig({ r: 4, targetModules: ['q_proj', 'down_proj'] });
    const a = initAdapter(c, modules, 7);
    const b = initAdapter(c, modules, 7);
    const other = initAdapter(c, modules, 8);
    expect(a.tensors.size).toBe(10);
    for (const [name, t] of a.tensors) {
      const bound = 1 / Math.sqrt(t.in);
      let max = 0;
      let sum = 0;
      for (const x of t.A) {
        max = Math.max(max, Math.abs(x));
        sum += x * x;
      }
      expect(max).toBeLessThan(bound);
      expect(max).toBeGreaterThan(0.9 * bound);
      // Uniform(-b, b) has variance b²/3.
      expect(sum / t.A.length).toBeGreaterThan((0.8 * (bound * bound)) / 3);
      expect(sum / t.A.length).toBeLessThan((1.2 * (bound * bound)) / 3);
      expect(t.B.every((x) => x === 0)).toBe(true);
      expect(t.A).toEqual(b.tensors.get(name)!.A);
      expect(t.A).not.toEqual(other.tensors.get(name)!.A);
    }
    expect(a.config.fanInFanOut).toBe(false);
    const g = model('gpt2-tiny-random');
    const ga = initAdapter(loraConfig({ targetModules: 'all-linear' }), g.modules, 1);
    expect(ga.config.fanInFanOut).toBe(true);
    expect(ga.config.targetModules).toEqual(['c_attn', 'c_fc', 'c_proj']);
    const attn = ga.tensors.get('transformer.h.0.attn.c_attn')!;
    expect([attn.r, attn.in, attn.out]).toEqual([8, 2, 6]);
  });

  it("PEFT's trainable-params line (stories260K, q_proj + v_proj, r 8)", () => {
    const { spec, modules } = model('stories260K-hf');
    const c = loraConfig({ r: 8, targetModules: ['q_proj', 'v_proj'] });
    // Per layer: q 8·(64+64) + v 8·(64+32) = 1792; 5 layers; base 260,032 (llama2.c's published count).
    expect(loraParamCount(c, modules)).toBe(8960);
    expect(trainableParamsLine(spec, modules, c)).toBe(
      'trainable params: 8,960 || all params: 268,992 || trainable%: 3.3310',
    );
    const withPattern = loraConfig({ r: 8, targetModules: ['q_proj', 'v_proj'], rankPattern: { v_proj: 2 } });
    expect(loraParamCount(withPattern, modules)).toBe(5 * (8 * 128 + 2 * 96));
  });

  it('formats like Python', () => {
    expect(formatTrainableLine(1234, 5678)).toBe(
      'trainable params: 1,234 || all params: 5,678 || trainable%: 21.7330',
    );
    expect(formatTrainableLine(1234567, 1234567890)).toBe(
      'trainable params: 1,234,567 || all params: 1,234,567,890 || trainable%: 0.1000',
    );
  });
});
