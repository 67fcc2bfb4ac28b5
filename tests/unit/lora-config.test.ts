// adapter_config.json both ways: Python json.dumps byte layout, PEFT fields, refusals, and per-module scaling.
import { describe, expect, it } from 'vitest';
import {
  alphaFor,
  loraConfig,
  parsePeftConfig,
  peftConfigJson,
  rankFor,
  scalingFor,
} from '../../src/lora/config';
import { pyFloat, pyFloatRepr, pyJson } from '../../src/lora/pyjson';

describe('pyJson matches Python json.dumps(indent=2, sort_keys=True)', () => {
  it('formats floats as repr(float)', () => {
    const cases: [number, string][] = [
      [0, '0.0'],
      [0.05, '0.05'],
      [1e-5, '1e-05'],
      [0.0001, '0.0001'],
      [16, '16.0'],
      [1e16, '1e+16'],
      [123456789012345.6, '123456789012345.6'],
      [-2.5e-7, '-2.5e-07'],
      [1.5e300, '1.5e+300'],
    ];
    for (const [v, want] of cases) expect(pyFloatRepr(v)).toBe(want);
  });

  it('nests, sorts keys, and escapes non-ASCII', () => {
    const text = pyJson({ b: [1, pyFloat(0.1)], a: {}, c: [], d: 'é"\n', e: { z: null, y: true } });
    expect(text).toBe(
      '{\n  "a": {},\n  "b": [\n    1,\n    0.1\n  ],\n  "c": [],\n  "d": "\\u00e9\\"\\n",\n  "e": {\n    "y": true,\n    "z": null\n  }\n}',
    );
  });
});

describe('peftConfigJson', () => {
  it('writes exactly the fields PEFT ≥ 0.9 reads, sorted, indent 2, no trailing newline', () => {
    const c = loraConfig({
      r: 8,
      loraAlpha: 16,
      loraDropout: 0.05,
      targetModules: ['v_proj', 'q_proj'],
      baseModelNameOrPath: 'karpathy/stories260K',
    });
    expect(peftConfigJson(c)).toBe(
      [
        '{',
        '  "alpha_pattern": {},',
        '  "base_model_name_or_path": "karpathy/stories260K",',
        '  "bias": "none",',
        '  "fan_in_fan_out": false,',
        '  "inference_mode": true,',
        '  "init_lora_weights": true,',
        '  "layers_pattern": null,',
        '  "layers_to_transform": null,',
        '  "lora_alpha": 16,',
        '  "lora_dropout": 0.05,',
        '  "modules_to_save": null,',
        '  "peft_type": "LORA",',
        '  "r": 8,',
        '  "rank_pattern": {},',
        '  "revision": null,',
        '  "target_modules": [',
        '    "q_proj",',
        '    "v_proj"',
        '  ],',
        '  "task_type": "CAUSAL_LM",',
        '  "use_dora": false,',
        '  "use_rslora": false',
        '}',
      ].join('\n'),
    );
  });

  it('writes lora_dropout 0 as the float 0.0 and keeps a regex target as a string', () => {
    const text = peftConfigJson(loraConfig({ targetModules: '.*\\.(q|v)_proj' }));
    expect(text).toContain('"lora_dropout": 0.0,');
    expect(text).toContain('"target_modules": ".*\\\\.(q|v)_proj",');
  });

  it('round-trips through parsePeftConfig', () => {
    const c = loraConfig({
      r: 4,
      loraAlpha: 8,
      targetModules: ['c_attn'],
      rankPattern: { 'h\\.0\\.attn\\.c_attn': 2 },
      alphaPattern: { 'h\\.0\\.attn\\.c_attn': 3.5 },
      useRslora: true,
      fanInFanOut: true,
      layersToTransform: [0, 2],
      layersPattern: 'h',
      revision: 'main',
    });
    expect(parsePeftConfig(peftConfigJson(c))).toEqual(c);
  });
});

describe('parsePeftConfig', () => {
  // What PEFT 0.13 writes for a Qwen2 adapter, newer fields included.
  const written = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: 'Qwen/Qwen2.5-0.5B',
    bias: 'none',
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 32,
    lora_bias: false,
    lora_dropout: 0.1,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: 16,
    rank_pattern: { down_proj: 8 },
    revision: null,
    target_modules: ['o_proj', 'down_proj', 'q_proj'],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: true,
  };

  it('reads a config written by PEFT in Python, extra fields included', () => {
    const c = parsePeftConfig(JSON.stringify(written));
    expect(c.r).toBe(16);
    expect(c.loraAlpha).toBe(32);
    expect(c.targetModules).toEqual(['o_proj', 'down_proj', 'q_proj']);
    expect(rankFor(c, 'model.layers.3.mlp.down_proj')).toBe(8);
    expect(rankFor(c, 'model.layers.3.self_attn.q_proj')).toBe(16);
    expect(scalingFor(c, 'model.layers.3.mlp.down_proj')).toBeCloseTo(32 / Math.sqrt(8), 12);
    expect(scalingFor(c, 'model.layers.3.self_attn.o_proj')).toBeCloseTo(32 / 4, 12);
  });

  it.each([
    [{ use_dora: true }, /DoRA/],
    [{ modules_to_save: ['lm_head'] }, /modules_to_save/],
    [{ bias: 'all' }, /bias "all"/],
    [{ peft_type: 'IA3' }, /peft_type "IA3"/],
    [{ task_type: 'SEQ_CLS' }, /task_type "SEQ_CLS"/],
    [{ lora_bias: true }, /lora_bias/],
    [{ layer_replication: [[0, 2]] }, /layer_replication/],
    [{ r: 0 }, /r must be a positive integer/],
    [{ rank_pattern: { q_proj: 2.5 } }, /rank_pattern\["q_proj"\]/],
  ])('refuses %j naming it', (patch, message) => {
    expect(() => parsePeftConfig(JSON.stringify({ ...written, ...patch }), 'x/adapter_config.json')).toThrow(
      message,
    );
    expect(() => parsePeftConfig(JSON.stringify({ ...written, ...patch }), 'x/adapter_config.json')).toThrow(
      /x\/adapter_config\.json/,
    );
  });

  it('names every refused feature at once', () => {
    expect(() =>
      parsePeftConfig(JSON.stringify({ ...written, use_dora: true, modules_to_save: ['score'] })),
    ).toThrow(/DoRA.*modules_to_save/);
  });

  it('rejects text that is not JSON', () => {
    expect(() => parsePeftConfig('{"r": 8', 'a.json')).toThrow(/a\.json: not valid JSON/);
  });
});

describe('rank and alpha patterns (PEFT get_pattern_key)', () => {
  const c = loraConfig({
    r: 8,
    loraAlpha: 16,
    targetModules: ['q_proj', 'v_proj'],
    rankPattern: { 'layers.1.self_attn.q_proj': 2, q_proj: 4 },
    alphaPattern: { '^model.layers.0.*': 1, v_proj: 5 },
  });
  it('takes the first key that matches the name or a dotted suffix of it, in dict order', () => {
    expect(rankFor(c, 'model.layers.1.self_attn.q_proj')).toBe(2);
    expect(rankFor(c, 'model.layers.0.self_attn.q_proj')).toBe(4);
    expect(rankFor(c, 'model.layers.11.self_attn.q_proj')).toBe(4);
    expect(rankFor(c, 'model.layers.0.self_attn.v_proj')).toBe(8);
  });
  it('does not match a key that is only a substring of a name component', () => {
    expect(rankFor(loraConfig({ targetModules: ['q_proj'], rankPattern: { proj: 3 } }), 'a.q_proj')).toBe(8);
  });
  it('looks alpha up on its own', () => {
    // `^model…` only matches when `(.*\.)?` is empty: whole-name keys work.
    expect(alphaFor(c, 'model.layers.0.self_attn.v_proj')).toBe(1);
    expect(alphaFor(c, 'model.layers.2.self_attn.v_proj')).toBe(5);
    expect(alphaFor(c, 'model.layers.2.self_attn.q_proj')).toBe(16);
    expect(scalingFor(c, 'model.layers.1.self_attn.q_proj')).toBe(16 / 2);
  });
});
